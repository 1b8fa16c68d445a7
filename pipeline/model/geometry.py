"""The one statement of DeepSpeech 0.9's model geometry and exported tensor contract.

Everything that must agree between training, the numpy reference, the exported graphs and the
legacy runtimes (libdeepspeech 0.9.3, libstt 1.4.0) is defined here and imported everywhere else
(reference deepspeech-0.9.md §1). Names marked **runtime boundary** are looked up by name inside
the native clients: renaming or reshaping them breaks every deployed runtime.

Geometry: [B, T, 26] MFCC → ±9 zero-padded frames of context (494) → 3 dense layers (ReLU clipped
at 20) → one unidirectional LSTM (forget bias 0, gate blocks i, c̃, f, o) → dense (clipped ReLU) →
dense to |alphabet| + 1 outputs (blank last).
"""

from __future__ import annotations

# -------------------------------------------------------------------------------------------------
# Features (the MFCC the runtimes compute: AudioSpectrogram + Mfcc kernels)
# -------------------------------------------------------------------------------------------------
SAMPLE_RATE = 16000      # default model rate; AUDIO_SAMPLE_RATE-style models derive windows below
WINDOW_MS = 32
STEP_MS = 20
WINDOW_SAMPLES = SAMPLE_RATE * WINDOW_MS // 1000   # 512 at 16 kHz
STEP_SAMPLES = SAMPLE_RATE * STEP_MS // 1000       # 320 at 16 kHz
N_INPUT = 26             # MFCC coefficients per frame
N_CONTEXT = 9            # frames of context on each side
N_WINDOW = 2 * N_CONTEXT + 1
N_FEATURES = N_WINDOW * N_INPUT  # 494: layer_1's input width
N_STEPS = 16             # frames per streaming chunk in the exported graphs
RELU_CLIP = 20.0


def window_samples(sample_rate: int) -> int:
    return sample_rate * WINDOW_MS // 1000


def step_samples(sample_rate: int) -> int:
    return sample_rate * STEP_MS // 1000


# -------------------------------------------------------------------------------------------------
# Variables (DeepSpeech TF1 names; release checkpoints and exports use them)
# -------------------------------------------------------------------------------------------------
LSTM_SCOPE = "cudnn_lstm/rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell"
LSTM_KERNEL = f"{LSTM_SCOPE}/kernel"   # [n_in + H, 4H], input rows first, gates i, c̃, f, o
LSTM_BIAS = f"{LSTM_SCOPE}/bias"       # [4H], forget bias 0 (DeepSpeech sets forget_bias=0)
DENSE_LAYERS = ("layer_1", "layer_2", "layer_3", "layer_5", "layer_6")


def weight_shapes(n_hidden: int, n_classes: int) -> dict[str, tuple[int, ...]]:
    """Every variable of the model, keyed by DeepSpeech name, with its shape."""
    h, c = n_hidden, n_classes
    return {
        "layer_1/weights": (N_FEATURES, h), "layer_1/bias": (h,),
        "layer_2/weights": (h, h), "layer_2/bias": (h,),
        "layer_3/weights": (h, h), "layer_3/bias": (h,),
        LSTM_KERNEL: (2 * h, 4 * h), LSTM_BIAS: (4 * h,),
        "layer_5/weights": (h, h), "layer_5/bias": (h,),
        "layer_6/weights": (h, c), "layer_6/bias": (c,),
    }


# -------------------------------------------------------------------------------------------------
# Exported graphs: runtime boundary. libdeepspeech/libstt look these tensors up by name.
# -------------------------------------------------------------------------------------------------
GRAPH_VERSION = 6        # runtime boundary: metadata_version the 0.9 clients accept
INPUT_NAMES_PB = ["input_node", "input_lengths", "previous_state_c", "previous_state_h",
                  "input_samples"]                          # runtime boundary
INPUT_NAMES_TFLITE = ["input_node", "previous_state_c", "previous_state_h",
                      "input_samples"]                      # runtime boundary
METADATA_NAMES = ["metadata_version", "metadata_sample_rate", "metadata_feature_win_len",
                  "metadata_feature_win_step", "metadata_beam_width", "metadata_alphabet",
                  "metadata_language"]                      # runtime boundary
OUTPUT_NAMES = ["logits", "new_state_c", "new_state_h", "mfccs", *METADATA_NAMES]  # runtime boundary
