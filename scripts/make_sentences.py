#!/usr/bin/env python3
"""Write the sample-corpus sentence lists `pipeline/langs/<ll>/sentences.txt`, deterministically.

French and Italian: real sentences chosen from Common Voice's CC0 sentence collection (the text files
of `server/data/<ll>/` in github.com/common-voice/common-voice; licence and source commit in
`pipeline/langs/<ll>/sentences_LICENSE.txt`). English: no CC0 collection at hand, so a small template
grammar (vocabulary written for this project) still makes them.

    python scripts/make_sentences.py fr --cv-dir <checkout>/server/data/fr
    python scripts/make_sentences.py it --cv-dir <checkout>/server/data/it
    python scripts/make_sentences.py en

A Common Voice sentence is kept when it has 3-12 words, no digit, no abbreviation (an all-capitals
word or a '.' inside the sentence), only letters of the pack's alphabet (any case) and the punctuation
` .,;:!?-'`, and the pack's normalizer accepts it; one sentence per normalized text; the `count` kept
are the first by a hash of (language, seed, sentence), so the choice does not depend on file order.
Address lists (`addresses-*.txt`) are skipped: street names, not sentences.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

LANGS_DIR = Path(__file__).resolve().parent.parent / "pipeline" / "langs"
COUNTS = {"fr": 2500, "it": 1500, "en": 1500}
PUNCT = ".,;!?"
CV_PUNCT = ".,;:!?-'"
CV_LANGS = ("fr", "it")
CV_SEED = 20261129


def parse(block: str) -> list[list[str]]:
    """One entry a line, fields separated by '|', surrounding spaces ignored."""
    return [[f.strip() for f in line.split("|")] for line in block.strip().splitlines() if line.strip()]


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


# ==================================================================================================
# English
# ==================================================================================================
# singular | plural
EN_AGENTS = parse("""
man|men
woman|women
child|children
boy|boys
girl|girls
neighbour|neighbours
baker|bakers
doctor|doctors
postman|postmen
teacher|teachers
cat|cats
dog|dogs
bird|birds
horse|horses
fox|foxes
rabbit|rabbits
cow|cows
sheep|sheep
hen|hens
duck|ducks
frog|frogs
turtle|turtles
bee|bees
student|students
friend|friends
brother|brothers
sister|sisters
uncle|uncles
aunt|aunts
cook|cooks
gardener|gardeners
fisherman|fishermen
sailor|sailors
pilot|pilots
painter|painters
musician|musicians
singer|singers
farmer|farmers
nurse|nurses
writer|writers
witch|witches
king|kings
queen|queens
prince|princes
princess|princesses
wolf|wolves
bear|bears
elephant|elephants
monkey|monkeys
whale|whales
dolphin|dolphins
butterfly|butterflies
squirrel|squirrels
traveller|travellers
shepherd|shepherds
captain|captains
mouse|mice
owl|owls
""")
EN_THINGS = parse("""
book|books
letter|letters
apple|apples
pear|pears
orange|oranges
cake|cakes
loaf|loaves
cheese|cheeses
cup|cups
glass|glasses
plate|plates
bottle|bottles
chair|chairs
table|tables
lamp|lamps
key|keys
bag|bags
hat|hats
coat|coats
shoe|shoes
dress|dresses
shirt|shirts
umbrella|umbrellas
bicycle|bicycles
car|cars
boat|boats
suitcase|suitcases
map|maps
newspaper|newspapers
pencil|pencils
notebook|notebooks
painting|paintings
photograph|photographs
flower|flowers
branch|branches
leaf|leaves
stone|stones
box|boxes
basket|baskets
knife|knives
fork|forks
spoon|spoons
mirror|mirrors
clock|clocks
watch|watches
phone|phones
computer|computers
radio|radios
guitar|guitars
piano|pianos
drum|drums
ball|balls
doll|dolls
toy|toys
candle|candles
blanket|blankets
pillow|pillows
egg|eggs
cherry|cherries
strawberry|strawberries
lemon|lemons
tomato|tomatoes
carrot|carrots
sandwich|sandwiches
present|presents
envelope|envelopes
ladder|ladders
hammer|hammers
rope|ropes
bucket|buckets
lantern|lanterns
scarf|scarves
glove|gloves
necklace|necklaces
treasure|treasures
drawing|drawings
song|songs
story|stories
message|messages
ticket|tickets
feather|feathers
kite|kites
jar|jars
""")
EN_PLACES = parse("""
house
kitchen
garden
forest
river
beach
mountain
village
town
market
school
church
station
harbour
library
museum
park
street
bridge
field
lake
island
castle
attic
cellar
living room
bedroom
office
bakery
pharmacy
hospital
farm
meadow
hill
ocean
pond
square
workshop
valley
""")
EN_ADJ = ["small", "big", "little", "old", "new", "young", "pretty", "red", "blue", "green", "yellow",
          "black", "white", "grey", "round", "square", "heavy", "light", "cold", "warm", "clean", "dirty",
          "ancient", "modern", "shiny", "strange", "huge", "tiny", "fragile", "quiet", "happy", "curious",
          "tired", "golden", "sweet", "ripe", "empty", "full", "broken", "wet", "dry", "shy", "gentle",
          "serious", "elegant", "dark", "bright", "silent", "lazy", "clever", "wooden", "brave", "noisy"]
# base | 3sg | past
EN_VT = parse("""
eat|eats|ate
watch|watches|watched
find|finds|found
carry|carries|carried
love|loves|loved
prepare|prepares|prepared
buy|buys|bought
sell|sells|sold
take|takes|took
open|opens|opened
close|closes|closed
wash|washes|washed
repair|repairs|repaired
draw|draws|drew
paint|paints|painted
read|reads|read
write|writes|wrote
choose|chooses|chose
see|sees|saw
keep|keeps|kept
hide|hides|hid
forget|forgets|forgot
lose|loses|lost
break|breaks|broke
fill|fills|filled
clean|cleans|cleaned
build|builds|built
hold|holds|held
throw|throws|threw
show|shows|showed
send|sends|sent
receive|receives|received
cut|cuts|cut
fold|folds|folded
empty|empties|emptied
decorate|decorates|decorated
protect|protects|protected
admire|admires|admired
count|counts|counted
bring|brings|brought
push|pushes|pushed
pull|pulls|pulled
follow|follows|followed
discover|discovers|discovered
offer|offers|offered
taste|tastes|tasted
catch|catches|caught
borrow|borrows|borrowed
""")
EN_VI = parse("""
sleep|sleeps|slept
sing|sings|sang
dance|dances|danced
work|works|worked
walk|walks|walked
run|runs|ran
swim|swims|swam
laugh|laughs|laughed
cry|cries|cried
play|plays|played
smile|smiles|smiled
think|thinks|thought
shout|shouts|shouted
travel|travels|travelled
wait|waits|waited
rest|rests|rested
dream|dreams|dreamed
whistle|whistles|whistled
chat|chats|chatted
skate|skates|skated
""")
EN_WHEN = ["yesterday", "tomorrow", "this morning", "this evening", "often", "sometimes", "always",
           "again", "every day", "on Sunday", "on Monday", "in winter", "in spring", "in summer",
           "in autumn", "at noon", "at night", "before dinner", "after lunch", "in an hour",
           "for a long time"]
EN_HOW = ["slowly", "quickly", "quietly", "together", "calmly", "without a sound", "with care", "in silence",
          "cheerfully", "without hurrying", "carefully"]
EN_NAMES = ["Mary", "Paul", "Lucy", "Julian", "Emma", "Helen", "Oliver", "Grace", "Leo", "Sophie", "Thomas",
            "Alice", "Henry", "Rose", "Daniel", "Ruth"]
EN_CITIES = ["London", "Leeds", "Bristol", "Dublin", "Boston", "Chicago", "Denver", "Glasgow", "Oxford",
             "Cardiff", "Seattle", "Toronto"]
EN_PREP = ["in", "on", "under", "near", "behind", "in front of", "next to", "far from", "towards", "around",
           "at", "inside", "outside", "beside"]
EN_FIXED = [
    "What a lovely day!", "It is cold this morning.", "It has been raining since last night.",
    "The wind blows over the hill.", "The snow falls softly.", "The sun sets behind the mountain.",
    "We are leaving on holiday tomorrow.", "I don't know where he is.", "Would you like tea or coffee?",
    "Let's meet in front of the station.", "What's the weather like today?", "I'm hungry and thirsty.",
    "That's an excellent idea.", "Wait for me, I'm coming!", "The train leaves at noon.",
    "Close the window, please.", "Thank you so much for your help.", "Where did you put the keys?",
    "The sky is grey, it's going to rain.", "Why don't you come with us?",
]


class English:
    def __init__(self, rng: random.Random):
        self.r = rng

    def noun_phrase(self, pool: list[list[str]], plural: bool | None = None, det: str | None = None,
                    adj_p: float = 0.45) -> tuple[str, bool]:
        r = self.r
        entry = r.choice(pool)
        if plural is None:
            plural = r.random() < 0.3 and len(entry) > 1
        noun = entry[1] if plural else entry[0]
        words = [noun]
        if r.random() < adj_p:
            words.insert(0, r.choice(EN_ADJ))
        det = det or r.choice(["def", "def", "def", "indef", "poss", "dem"])
        if det == "def":
            d = "the"
        elif det == "indef":
            d = r.choice(["some", "two", "three", "a few"]) if plural else (
                "an" if words[0][0] in "aeiou" else "a")
        elif det == "poss":
            d = r.choice(["my", "your", "his", "her", "our", "their"])
        else:
            d = ("these" if r.random() < 0.5 else "those") if plural else r.choice(["this", "that"])
        return " ".join([d, *words]), plural

    def subject(self) -> tuple[str, bool]:
        r = self.r
        if r.random() < 0.15:
            return r.choice(EN_NAMES), False
        return self.noun_phrase(EN_AGENTS)

    def prep_phrase(self) -> str:
        r = self.r
        prep = r.choice(EN_PREP)
        if prep == "in" and r.random() < 0.3:
            return f"in {r.choice(EN_CITIES)}"
        np_, _ = self.noun_phrase(EN_PLACES, det=r.choice(["def", "def", "indef", "poss"]), adj_p=0.25)
        return f"{prep} {np_}"

    def sentence(self) -> str:
        r = self.r
        if r.random() < 0.03:
            return r.choice(EN_FIXED)
        subj, plural = self.subject()
        obj, _ = self.noun_phrase(EN_THINGS)
        vt, vi = r.choice(EN_VT), r.choice(EN_VI)
        t = r.random()
        if t < 0.25:
            core = f"{subj} {vt[0] if plural else vt[1]} {obj}"
        elif t < 0.45:
            core = f"{subj} {vt[2]} {obj}"
        elif t < 0.53:
            core = f"{subj} {r.choice(['will', 'can', 'must', 'might'])} {vt[0]} {obj}"
        elif t < 0.62:
            neg = r.choice(["don't", "do not"] if plural else ["doesn't", "does not"] + ["didn't"])
            core = f"{subj} {neg} {vt[0]} {obj}"
        elif t < 0.80:
            core = f"{subj} {r.choice([vi[0] if plural else vi[1], vi[2]])}"
        elif t < 0.90:
            pron = r.choice(["I", "you", "we", "they"])
            core = f"{pron} {r.choice(['want to', 'have to', 'would like to', 'forgot to'])} " \
                   f"{r.choice([vt[0] + ' ' + obj, vi[0]])}"
        else:
            q = r.choice(["why", "when", "how", "where"])
            return cap(f"{q} did {subj} {vt[0]} {obj}?")
        extra = []
        if r.random() < 0.5:
            extra.append(self.prep_phrase())
        if r.random() < 0.25:
            extra.append(r.choice(EN_HOW))
        text = " ".join([core, *extra])
        if r.random() < 0.25:
            when = r.choice(EN_WHEN)
            text = f"{when}, {text}" if r.random() < 0.5 else f"{text} {when}"
        return cap(text) + ("." if r.random() < 0.92 else "!")


GRAMMARS: dict[str, Callable[[random.Random], English]] = {"en": English}


def load_alphabet(lang: str) -> set[str]:
    labels = set()
    for line in (LANGS_DIR / lang / "alphabet.txt").read_text(encoding="utf-8").splitlines():
        if line == "\\#":
            labels.add("#")
        elif line and not line.startswith("#"):
            labels.add(line)
    return labels


def check(sentence: str, alphabet: set[str]) -> str | None:
    """Why `sentence` is unfit, or None."""
    words = sentence.split()
    if not 3 <= len(words) <= 12:
        return f"{len(words)} words"
    if any(ch.isdigit() for ch in sentence):
        return "digit"
    bad = {ch for ch in sentence.lower() if ch not in alphabet and ch not in PUNCT}
    return f"characters {sorted(bad)}" if bad else None


def generate(lang: str, count: int, seed: int = 20240601) -> list[str]:
    rng = random.Random(f"{lang}-{seed}")
    grammar = GRAMMARS[lang](rng)
    alphabet = load_alphabet(lang)
    out: dict[str, None] = {}
    tries = 0
    while len(out) < count:
        tries += 1
        if tries > count * 50:
            raise SystemExit(f"{lang}: only {len(out)} distinct sentences after {tries} tries")
        s = re.sub(r"\s+", " ", grammar.sentence()).strip()
        why = check(s, alphabet)
        if why is None:
            out.setdefault(s, None)
        elif why.startswith("characters"):
            raise SystemExit(f"{lang}: grammar produced {s!r}: {why}")
    return list(out)


def cv_candidate(line: str, alphabet: set[str]) -> str | None:
    """The sentence as it will be listed (typographic apostrophe made plain), or None if unfit."""
    s = re.sub(r"\s+", " ", line.replace("\u2019", "'")).strip()
    words = s.split()
    if not 3 <= len(words) <= 12 or any(ch.isdigit() for ch in s):
        return None
    if "." in s.rstrip(".!?") or any(len(w.strip(CV_PUNCT)) > 1 and w.strip(CV_PUNCT).isupper()
                                     for w in words):
        return None  # abbreviations: espeak-ng and the normalizer would not say the same thing
    if any(ch.lower() not in alphabet and ch not in CV_PUNCT and ch != " " for ch in s):
        return None
    return s


def select_cv(lang: str, cv_dir: Path, count: int, seed: int = CV_SEED) -> list[str]:
    """`count` Common Voice sentences of `lang` from the text files in `cv_dir` (see the docstring)."""
    sys.path.insert(0, str(LANGS_DIR.parent.parent))
    from pipeline.langs import load_pack
    from pipeline.text.normalize import normalize

    pack = load_pack(lang)
    alphabet = load_alphabet(lang)
    files = sorted(p for p in cv_dir.glob("*.txt") if not p.name.startswith("addresses"))
    if not files:
        raise SystemExit(f"{cv_dir}: no Common Voice sentence files (*.txt)")
    by_norm: dict[str, str] = {}
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            s = cv_candidate(line, alphabet)
            norm = normalize(s, pack) if s else None
            if s and norm and norm not in by_norm:
                by_norm[norm] = s
    ranked = sorted(by_norm.values(),
                    key=lambda s: hashlib.sha256(f"{lang}:{seed}:{s}".encode()).hexdigest())
    if len(ranked) < count:
        raise SystemExit(f"{lang}: only {len(ranked)} fit sentences in {cv_dir}, {count} asked")
    return ranked[:count]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("langs", nargs="*", default=sorted(COUNTS))
    ap.add_argument("--count", type=int, default=0, help="sentences per language (default: per language)")
    ap.add_argument("--cv-dir", type=Path, default=None,
                    help="fr/it: the folder of Common Voice sentence files (server/data/<ll>)")
    args = ap.parse_args(argv)
    for lang in args.langs:
        count = args.count or COUNTS[lang]
        if lang in CV_LANGS:
            if args.cv_dir is None:
                raise SystemExit(f"{lang}: give --cv-dir, the Common Voice folder server/data/{lang}")
            sentences = select_cv(lang, args.cv_dir, count)
        else:
            sentences = generate(lang, count)
        path = LANGS_DIR / lang / "sentences.txt"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        tmp.replace(path)
        vocab = {w.strip(CV_PUNCT).lower() for s in sentences for w in s.split()}
        print(f"{path}: {len(sentences)} sentences, {len(vocab)} distinct words", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
