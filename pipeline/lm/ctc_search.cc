// Lexicon-constrained CTC prefix beam search with a KenLM word LM: the search of
// pipeline/lm/decode.py for scorers with a word vocabulary, called through ctypes
// (pipeline/lm/ctc_search.py). Built with KenLM's query code by scripts/build_ctc_search.sh.
//
// It is flashlight-text's LexiconDecoder (CTC criterion, log-add merging, MAX-smeared lexicon trie,
// word-level KenLM, no unknown words) restated with flat data: the same candidates, the same beam
// and threshold, the same merge of equal states (log-add in order of score, the best one's history)
// and the same end-of-sentence scoring, so it returns the same best hypothesis and scores
// (tests/lm/test_ctc_search.py checks it against flashlight-text). What differs is how: hypotheses
// are plain values, word histories are a tree of indices (hypotheses merge only when their whole
// word history is the same, as in flashlight and ds_ctcdecoder), LM scores are cached per history
// and word, equal states are found by an open-addressing hash instead of a sort, and the trie is
// a few flat arrays.
// Characters the caller pruned (log probability <= -1e8) are skipped: they can never be within the
// beam threshold of the blank, which is never pruned.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lm/model.hh"

#ifndef DSCTC_SOURCE_SHA
#define DSCTC_SOURCE_SHA "unknown"
#endif

namespace {

const double kNegInf = -std::numeric_limits<double>::infinity();
const float kPruned = -1e8f;
const int kMaxClasses = 1 << 13;   // the state key's token field
const size_t kMaxHistories = 1u << 24;
const size_t kMaxNodes = 1u << 26;

// The lexicon trie in flat arrays (a 500 k-word vocabulary: tens of MB, not hundreds): node n's
// children are edge_token/edge_node[child_begin[n] .. child_begin[n + 1]) sorted by token, the
// words ending at it word_id[word_begin[n] .. word_begin[n + 1]); parents are numbered first.
struct Trie {
  std::vector<int32_t> child_begin, edge_token, edge_node, word_begin, word_id;
  std::vector<float> max_score;  // the best log10 P(word | <s>) at or below the node (smearing)
  std::vector<int32_t> root_child;  // the root's child by token (-1: none)

  bool has_children(int n) const { return child_begin[n] < child_begin[n + 1]; }
  int child(int n, int token) const {
    if (n == 0) return root_child[token];
    for (int k = child_begin[n]; k < child_begin[n + 1]; ++k)
      if (edge_token[k] == token) return edge_node[k];
    return -1;
  }
};

// Builds a Trie from words inserted one by one (edges and words in linked lists until `finish`).
struct TrieBuilder {
  std::vector<int32_t> first_edge{-1}, first_word{-1};  // per node; node 0: the root
  std::vector<int32_t> edge_token, edge_node, edge_next, word_id, word_next;
  std::vector<float> word_score;

  int child(int n, int token) const {
    for (int e = first_edge[n]; e >= 0; e = edge_next[e])
      if (edge_token[e] == token) return edge_node[e];
    return -1;
  }
  void insert(const int* tokens, int length, int word, float score) {
    int n = 0;
    for (int k = 0; k < length; ++k) {
      int c = child(n, tokens[k]);
      if (c < 0) {
        c = static_cast<int>(first_edge.size());
        first_edge.push_back(-1);
        first_word.push_back(-1);
        edge_token.push_back(tokens[k]);
        edge_node.push_back(c);
        edge_next.push_back(first_edge[n]);
        first_edge[n] = static_cast<int>(edge_token.size()) - 1;
      }
      n = c;
    }
    word_id.push_back(word);
    word_score.push_back(score);
    word_next.push_back(first_word[n]);
    first_word[n] = static_cast<int>(word_id.size()) - 1;
  }
  size_t size() const { return first_edge.size(); }
  Trie finish(int n_classes) const {
    const size_t n_nodes = size();
    Trie t;
    t.child_begin.assign(n_nodes + 1, 0);
    t.word_begin.assign(n_nodes + 1, 0);
    t.max_score.assign(n_nodes, -std::numeric_limits<float>::infinity());
    std::vector<std::pair<int, int>> kids;
    std::vector<int> ws;
    for (size_t n = 0; n < n_nodes; ++n) {
      kids.clear();
      for (int e = first_edge[n]; e >= 0; e = edge_next[e])
        kids.emplace_back(edge_token[e], edge_node[e]);
      std::sort(kids.begin(), kids.end());
      for (const auto& k : kids) {
        t.edge_token.push_back(k.first);
        t.edge_node.push_back(k.second);
      }
      t.child_begin[n + 1] = static_cast<int32_t>(t.edge_token.size());
      ws.clear();
      for (int w = first_word[n]; w >= 0; w = word_next[w]) {
        ws.push_back(word_id[w]);
        t.max_score[n] = std::max(t.max_score[n], word_score[w]);
      }
      std::reverse(ws.begin(), ws.end());  // in insertion order
      t.word_id.insert(t.word_id.end(), ws.begin(), ws.end());
      t.word_begin[n + 1] = static_cast<int32_t>(t.word_id.size());
    }
    // children are numbered after their parents: one backward sweep smears the maxima upwards
    for (size_t n = n_nodes; n-- > 0;)
      for (int k = t.child_begin[n]; k < t.child_begin[n + 1]; ++k)
        t.max_score[n] = std::max(t.max_score[n], t.max_score[t.edge_node[k]]);
    t.root_child.assign(n_classes, -1);
    for (int k = t.child_begin[0]; k < t.child_begin[1]; ++k)
      t.root_child[t.edge_token[k]] = t.edge_node[k];
    return t;
  }
};

struct Hyp {
  double score, am;  // total and acoustic (emitting model) log-likelihood
  int hist, node, token;  // hist: the word history (and LM state); node: in the lexicon trie
  bool prev_blank;
};

// A word history: a node of the tree of the histories scored in this utterance.
struct History {
  int word, parent;
  lm::ngram::State state;
};

struct Search {
  lm::base::Model* model = nullptr;
  std::vector<lm::WordIndex> lm_index;  // our word id -> KenLM vocabulary id
  Trie trie;
  int space = 0, blank = 0;
  // per utterance
  std::vector<History> hist;
  // (history, word) -> (the history it makes, log10 p)
  std::unordered_map<uint64_t, std::pair<int, float>> cache;
  std::vector<Hyp> hyps, prev, cands;
  std::vector<int> order, group_next, group_tail, members, top;
  std::vector<uint64_t> slot_key;  // open addressing: (state key, first candidate of its group)
  std::vector<int> slot_head;
  std::vector<uint32_t> slot_gen;  // a slot is in use when it holds the current generation
  uint32_t gen = 0;

  // The history `h` followed by `word` (-1: the end of the sentence) and its log10 probability.
  std::pair<int, float> score(int h, int word) {
    uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(h)) << 32) |
                   static_cast<uint32_t>(word);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    History next{word, h, {}};
    lm::WordIndex w = word < 0 ? model->BaseVocabulary().EndSentence() : lm_index[word];
    float p = model->BaseScore(&hist[h].state, w, &next.state);
    hist.push_back(next);
    auto res = std::make_pair(static_cast<int>(hist.size()) - 1, p);
    cache.emplace(key, res);
    return res;
  }

  // A candidate is kept while it is within `threshold` of the best seen so far in this frame.
  static void add(std::vector<Hyp>& out, double& best, double threshold, const Hyp& h) {
    if (h.score >= best) best = h.score;
    if (h.score >= best - threshold) out.push_back(h);
  }

  static uint64_t key_of(const Hyp& c) {  // exact: hist < 2^24, node < 2^26, token < 2^13
    return (static_cast<uint64_t>(c.hist) << 40) | (static_cast<uint64_t>(c.node) << 14) |
           (static_cast<uint64_t>(c.token) << 1) | static_cast<uint64_t>(c.prev_blank);
  }

  // The candidates within `threshold` of the frame's best, those in the same state merged (scores
  // log-added from the highest down, the highest one's history kept), at most `beam` by score.
  void store(double best, double threshold, int beam) {
    const double floor = best - threshold;
    order.clear();
    group_next.assign(cands.size(), -1);
    group_tail.resize(cands.size());
    size_t size = 64;
    while (size < 2 * cands.size()) size *= 2;
    if (slot_key.size() < size) {
      slot_key.assign(size, 0);
      slot_head.assign(size, 0);
      slot_gen.assign(size, 0);
      gen = 0;
    }
    if (++gen == 0) {
      std::fill(slot_gen.begin(), slot_gen.end(), 0);
      gen = 1;
    }
    const size_t mask = slot_key.size() - 1;
    for (int i = 0; i < static_cast<int>(cands.size()); ++i) {
      if (cands[i].score < floor) continue;
      const uint64_t key = key_of(cands[i]);
      size_t s = ((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
      while (slot_gen[s] == gen && slot_key[s] != key) s = (s + 1) & mask;
      if (slot_gen[s] != gen) {
        slot_gen[s] = gen;
        slot_key[s] = key;
        slot_head[s] = i;
        order.push_back(i);
        group_tail[i] = i;
      } else {
        const int head = slot_head[s];
        group_next[group_tail[head]] = i;
        group_tail[head] = i;
      }
    }
    hyps.clear();
    for (int head : order) {
      if (group_next[head] < 0) {
        hyps.push_back(cands[head]);
        continue;
      }
      members.clear();
      for (int j = head; j >= 0; j = group_next[j]) members.push_back(j);
      // by score, highest first, equal scores in arrival order (groups are small)
      for (size_t k = 1; k < members.size(); ++k) {
        const int m = members[k];
        size_t j = k;
        for (; j > 0 && cands[members[j - 1]].score < cands[m].score; --j)
          members[j] = members[j - 1];
        members[j] = m;
      }
      Hyp h = cands[members[0]];
      for (size_t k = 1; k < members.size(); ++k) {
        const double s = cands[members[k]].score;
        const double hi = std::max(h.score, s), lo = std::min(h.score, s);
        h.score = hi + std::log1p(std::exp(lo - hi));
      }
      hyps.push_back(h);
    }
    if (static_cast<int>(hyps.size()) > beam) {
      std::nth_element(hyps.begin(), hyps.begin() + beam, hyps.end(),
                       [](const Hyp& a, const Hyp& b) { return a.score > b.score; });
      hyps.resize(beam);
    }
  }

  // One frame: every hypothesis extended by the frame's top characters (into the trie; a word
  // completed by its final space is LM-scored), by a repeat of its last character (or silence at
  // the root), and by the blank.
  void step(const float* row, int N, int beam, int top_n, double threshold, double lm_weight,
            double word_score) {
    top.clear();
    for (int k = 0; k < N; ++k)
      if (row[k] > kPruned) top.push_back(k);
    if (static_cast<int>(top.size()) > top_n) {
      std::partial_sort(top.begin(), top.begin() + top_n, top.end(),
                        [row](int l, int r) { return row[l] > row[r]; });
      top.resize(top_n);
    }
    prev.swap(hyps);
    cands.clear();
    cands.reserve(prev.size() * (top.size() + 2));
    double best = kNegInf;
    for (const Hyp& p : prev) {
      // in float, as flashlight: the smeared scores and LM scores are floats
      const float lex_max = p.node == 0 ? 0.0f : trie.max_score[p.node];
      for (int n : top) {
        const int c = trie.child(p.node, n);
        if (c < 0) continue;
        const double am = row[n];
        const double base = p.score + am;
        if ((p.prev_blank || n != p.token) && trie.has_children(c)) {
          const double lm = static_cast<float>(trie.max_score[c] - lex_max);
          add(cands, best, threshold, Hyp{base + lm_weight * lm, p.am + am, p.hist, c, n, false});
        }
        if (p.node == 0 && p.token == n) continue;  // a one-character word needs a blank between
        for (int k = trie.word_begin[c]; k < trie.word_begin[c + 1]; ++k) {
          const auto sc = score(p.hist, trie.word_id[k]);
          const double lm = static_cast<float>(sc.second - lex_max);
          add(cands, best, threshold,
              Hyp{base + lm_weight * lm + word_score, p.am + am, sc.first, 0, n, false});
        }
      }
      if (!p.prev_blank || p.node == 0) {
        const int n = p.node == 0 ? space : p.token;
        const double am = row[n];
        add(cands, best, threshold, Hyp{p.score + am, p.am + am, p.hist, p.node, n, false});
      }
      const double am = row[blank];
      add(cands, best, threshold, Hyp{p.score + am, p.am + am, p.hist, p.node, blank, true});
    }
    store(best, threshold, beam);
  }
};

}  // namespace

extern "C" {

// The SHA-256 of this file when it was built (the loader refuses a library built from another).
const char* dsctc_source_sha() { return DSCTC_SOURCE_SHA; }

void dsctc_free(void* handle) {
  Search* s = static_cast<Search*>(handle);
  if (!s) return;
  delete s->model;
  delete s;
}

// A search over `n_words` words: word w is spelled tokens[offsets[w] .. offsets[w + 1]) (its
// characters and the space), looked up in the KenLM model at `lm_path` (a .scorer works: KenLM
// ignores what follows the model). NULL and a message in `err` on failure.
void* dsctc_new(const char* lm_path, int n_words, const char* const* words, const int* tokens,
                const int* offsets, int space, int blank, char* err, int errlen) {
  Search* s = new (std::nothrow) Search();
  if (!s) return nullptr;
  try {
    s->model = lm::ngram::LoadVirtual(lm_path);
    s->space = space;
    s->blank = blank;
    const lm::base::Vocabulary& vocab = s->model->BaseVocabulary();
    s->lm_index.resize(n_words);
    TrieBuilder built;
    lm::ngram::State start, out;
    s->model->BeginSentenceWrite(&start);
    for (int w = 0; w < n_words; ++w) {
      s->lm_index[w] = vocab.Index(words[w]);
      for (int k = offsets[w]; k < offsets[w + 1]; ++k) {
        if (tokens[k] < 0 || tokens[k] >= kMaxClasses) {
          std::snprintf(err, errlen, "token %d of word %d is outside 0..%d", tokens[k], w,
                        kMaxClasses - 1);
          dsctc_free(s);
          return nullptr;
        }
      }
      built.insert(tokens + offsets[w], offsets[w + 1] - offsets[w], w,
                   s->model->BaseScore(&start, s->lm_index[w], &out));
      if (built.size() >= kMaxNodes) {
        std::snprintf(err, errlen, "the lexicon has over %zu trie nodes, more than supported",
                      kMaxNodes - 1);
        dsctc_free(s);
        return nullptr;
      }
    }
    s->trie = built.finish(kMaxClasses);
  } catch (const std::exception& ex) {
    std::snprintf(err, errlen, "%s", ex.what());
    dsctc_free(s);
    return nullptr;
  }
  return s;
}

// The best hypothesis for `em` (T frames of N log probabilities, row-major): its words into
// `out_words` (at most `max_words`), its total and acoustic scores. Returns the number of words;
// -1: no hypothesis survived; -2: N or the number of word histories over this build's limits;
// -3: out of memory or a KenLM error.
int dsctc_decode(void* handle, const float* em, int T, int N, int beam, int top_n,
                 double threshold, double lm_weight, double word_score, int* out_words,
                 int max_words, double* out_score, double* out_am) {
  Search& s = *static_cast<Search*>(handle);
  if (N <= 0 || N > kMaxClasses) return -2;
  try {
    s.cache.clear();
    s.hist.clear();
    s.hyps.clear();
    s.hist.push_back(History{-1, -1, {}});
    s.model->BeginSentenceWrite(&s.hist[0].state);
    s.hyps.push_back(Hyp{0.0, 0.0, 0, 0, s.space, false});
    for (int t = 0; t < T; ++t) {
      s.step(em + static_cast<size_t>(t) * N, N, beam, top_n, threshold, lm_weight, word_score);
      if (s.hyps.empty()) return -1;
      if (s.hist.size() >= kMaxHistories) return -2;
    }
    // The end of the sentence, LM-scored for the hypotheses at a word boundary if there are any.
    s.prev.swap(s.hyps);
    s.cands.clear();
    bool boundary = false;
    for (const Hyp& p : s.prev) boundary = boundary || p.node == 0;
    double best = kNegInf;
    for (const Hyp& p : s.prev) {
      if (boundary && p.node != 0) continue;
      const auto sc = s.score(p.hist, -1);
      Search::add(s.cands, best, threshold,
                  Hyp{p.score + lm_weight * sc.second, p.am, sc.first, p.node, s.space, false});
    }
    s.store(best, threshold, beam);
    const Hyp* top = nullptr;
    for (const Hyp& p : s.hyps)
      if (!top || p.score > top->score) top = &p;
    if (!top) return -1;
    std::vector<int> words;
    for (int i = top->hist; i > 0; i = s.hist[i].parent)
      if (s.hist[i].word >= 0) words.push_back(s.hist[i].word);
    std::reverse(words.begin(), words.end());
    for (int i = 0; i < static_cast<int>(words.size()) && i < max_words; ++i)
      out_words[i] = words[i];
    *out_score = top->score;
    *out_am = top->am;
    return static_cast<int>(words.size());
  } catch (const std::exception&) {
    return -3;
  }
}

}  // extern "C"
