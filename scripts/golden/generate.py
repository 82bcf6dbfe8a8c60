#!/usr/bin/env python3
"""Golden fixtures: what Hugging Face transformers computes, for the TypeScript runtime to match.

Writes test/fixtures/golden/ (see scripts/golden/README.md):
  tokenizer/            byte-level BPE tokenizer trained on code from the three datasets
  models/<head>/        tiny seeded RoBERTa checkpoints saved by transformers (classify, defect, clone, search)
  expected/<head>.json  inputs and transformers' outputs on real functions from ../shared/data
  MANIFEST.json         versions, seeds, dataset attribution, sha256 of every file above
  roundtrip.json        result of loading a checkpoint written by scripts/golden/roundtrip.ts in transformers

Run `npm run golden` (or `python3 scripts/golden/generate.py`). Under a python without torch this
script creates/reuses the venv of scripts/golden/setup-venv.sh and re-executes itself there.
`--roundtrip-only` runs only the last phase. Python is used for this generator only.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FIXTURES = ROOT / "test" / "fixtures" / "golden"
_REEXEC_FLAG = "ELIBADCODE_GOLDEN_IN_VENV"


def _ensure_venv() -> None:
    """Re-execute inside the golden venv unless this interpreter already has the pinned stack."""
    if os.environ.get(_REEXEC_FLAG) == "1":
        return
    import importlib.metadata as md

    pins = dict(
        line.strip().split("==", 1)
        for line in (HERE / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    try:
        if all(md.version(name) == version for name, version in pins.items()):
            return
    except md.PackageNotFoundError:
        pass
    out = subprocess.run(["bash", str(HERE / "setup-venv.sh")], stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"golden: scripts/golden/setup-venv.sh failed (exit {out.returncode})")
    venv_python = Path(out.stdout.strip().splitlines()[-1]) / "bin" / "python"
    env = dict(os.environ, **{_REEXEC_FLAG: "1"})
    os.execve(str(venv_python), [str(venv_python), str(Path(__file__).resolve()), *sys.argv[1:]], env)


if __name__ == "__main__":
    _ensure_venv()

# Reproducibility knobs that must be set before torch/tokenizers start their thread pools.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import hashlib  # noqa: E402
import importlib.metadata  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from safetensors import safe_open  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from tokenizers import AddedToken  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoTokenizer,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaTokenizerFast,
    RobertaForSequenceClassification,
    RobertaModel,
    RobertaPreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput  # noqa: E402

MAX_LENGTH = 64
VOCAB_SIZE = 1000
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # ids 0..4, RoBERTa's order
SEEDS = {"python": 20261125, "classify": 1101, "defect": 2202, "clone": 3303, "search": 4404}
TOKENIZER_CORPUS_PER_SOURCE = 400  # functions (or queries) taken from each source file, in file order
ROUNDTRIP_TOLERANCE = 1e-4
DATA_DIR = Path(os.environ.get("ELIBADCODE_DATA", ROOT.parent / "shared" / "data"))

DATASETS = {
    "devign": {
        "name": "Devign / CodeXGLUE Defect-detection (C, QEMU and FFmpeg)",
        "licence": "Computational Use of Data Agreement (C-UDA) 1.0, as stated by CodeXGLUE",
        "attribution": (
            "Devign (Zhou et al., NeurIPS 2019) via CodeXGLUE (Lu et al., 2021); test split from "
            "soarsmu/attack-pretrain-models-of-code (ALERT, ICSE'22, MIT licence, Copyright (c) 2021 Zhou Yang) "
            "commit d42169557a3641628931c6eb00af6f4bd66b380a; train_subset (used only to train the tokenizer) from "
            "rebibabo/invisible_backdoor commit bf8196ef417b95c746583422549c5e2bd27fa360 (no licence file; it holds "
            "the unmodified CodeXGLUE/Devign train functions, covered by C-UDA)"
        ),
        "code_licences": "functions come from QEMU (GPL-2.0) and FFmpeg (LGPL/GPL)",
        "terms": "C-UDA: computational use only; keep this attribution; recipients are bound to C-UDA",
    },
    "bigclonebench": {
        "name": "BigCloneBench / CodeXGLUE Clone-detection-BigCloneBench (Java)",
        "licence": "Computational Use of Data Agreement (C-UDA) 1.0, as stated by CodeXGLUE",
        "attribution": (
            "BigCloneBench (Svajlenko et al., ICSME 2014), filtered as in Wang et al. 2020 (FA-AST), via "
            "CodeXGLUE (Lu et al., 2021); pairs sampled by ALERT (Yang et al., ICSE 2022), "
            "soarsmu/attack-pretrain-models-of-code (MIT licence, Copyright (c) 2021 Zhou Yang) "
            "commit d42169557a3641628931c6eb00af6f4bd66b380a"
        ),
        "code_licences": "methods come from open-source Java projects in IJaDataset, under their own licences",
        "terms": "C-UDA: computational use only; keep this attribution; recipients are bound to C-UDA",
    },
    "cosqa": {
        "name": "CoSQA (Python code search with web queries)",
        "licence": "Computational Use of Data Agreement (C-UDA) 1.0, as stated by the CoCLR README",
        "attribution": (
            "CoSQA (Huang et al., ACL 2021), Jun-jie-Huang/CoCLR commit 14ebcacf9e9bc3e7109102632bc63047876f27d2; "
            "code from CodeSearchNet (Husain et al., 2019)"
        ),
        "code_licences": "functions come from CodeSearchNet, i.e. open-source GitHub repos under their own licences",
        "terms": "C-UDA: computational use only; keep this attribution; recipients are bound to C-UDA",
    },
}

log = logging.getLogger("golden")


# --------------------------------------------------------------------------------------------------
# small helpers


def fail(message: str) -> None:
    sys.exit(f"golden: {message}")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def f32(x: float) -> float:
    """The float32 value as the shortest decimal that reads back to the same float32."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="0"))


def floats(t: torch.Tensor | np.ndarray) -> list:
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    if a.ndim == 0:
        return f32(a.item())  # type: ignore[return-value]
    return [floats(x) for x in a] if a.ndim > 1 else [f32(x) for x in a.tolist()]


def ints(t: torch.Tensor) -> list:
    return t.detach().cpu().tolist()


def to_json(obj: object, indent: int = 0) -> str:
    """JSON with objects and nested lists indented, but every list of numbers on one line (small files)."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {to_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in obj):
            return json.dumps(list(obj), separators=(",", ":"), allow_nan=False)
        return "[\n" + ",\n".join(inner + to_json(x, indent + 1) for x in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = to_json(obj) + "\n"
    assert json.loads(text) == json.loads(json.dumps(obj)), f"{path}: JSON writer changed the data"
    path.write_text(text, encoding="utf-8")


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        fail(f"dataset file {path} is missing (see /work/shared/data/*/README.md)")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def versions() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": importlib.metadata.version("tokenizers"),
        "safetensors": importlib.metadata.version("safetensors"),
        "numpy": np.__version__,
    }


# --------------------------------------------------------------------------------------------------
# data


class Data:
    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            fail(
                f"dataset directory {root} not found. The fixtures are built from real code in "
                "../shared/data relative to the repository root (devign/, bigclonebench/, cosqa/); "
                "set ELIBADCODE_DATA to point elsewhere."
            )
        for sub in DATASETS:
            if not (root / sub).is_dir():
                fail(f"dataset directory {root / sub} not found")
        self.root = root
        self.devign_test = read_jsonl(root / "devign" / "test.jsonl")
        self.devign_train = read_jsonl(root / "devign" / "train_subset.jsonl")
        self.bcb_funcs = read_jsonl(root / "bigclonebench" / "data.jsonl")
        self.bcb_pairs = read_jsonl(root / "bigclonebench" / "test.jsonl")
        self.cosqa_codebase = read_jsonl(root / "cosqa" / "codebase.jsonl")
        self.cosqa_retrieval_test = read_jsonl(root / "cosqa" / "retrieval_test.jsonl")
        self.bcb_by_id = {row["idx"]: row["func"] for row in self.bcb_funcs}

    def tokenizer_corpus(self) -> tuple[list[str], list[dict]]:
        n = TOKENIZER_CORPUS_PER_SOURCE
        parts = [
            ("devign", "devign/train_subset.jsonl", [r["func"] for r in self.devign_train[:n]]),
            ("bigclonebench", "bigclonebench/data.jsonl", [r["func"] for r in self.bcb_funcs[:n]]),
            ("cosqa", "cosqa/codebase.jsonl", [r["code"] for r in self.cosqa_codebase[:n]]),
            ("cosqa", "cosqa/retrieval_test.jsonl (field doc)", [r["doc"] for r in self.cosqa_retrieval_test[:n]]),
        ]
        texts: list[str] = []
        used = []
        for dataset, file, chunk in parts:
            texts.extend(chunk)
            used.append({"dataset": dataset, "file": file, "rows": f"first {len(chunk)} rows in file order"})
        return texts, used


# --------------------------------------------------------------------------------------------------
# tokenizer


def train_tokenizer(data: Data, out_dir: Path) -> tuple[PreTrainedTokenizerFast, PreTrainedTokenizerFast, list[dict]]:
    texts, used = data.tokenizer_corpus()
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    for i, t in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(t) == i, f"special token {t} got id {tok.token_to_id(t)}"
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")),  # sep
        ("<s>", tok.token_to_id("<s>")),  # cls
        trim_offsets=True,
        add_prefix_space=False,
    )
    # RobertaTokenizerFast so tokenizer_config.json names a class transformers 4.x and 5.x both know.
    fast = RobertaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, normalized=False, special=True),
        model_max_length=MAX_LENGTH,
        padding_side="right",
        truncation_side="right",
    )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    fast.save_pretrained(str(out_dir))
    ensure_special_tokens_map(fast, out_dir)
    loaded = AutoTokenizer.from_pretrained(str(out_dir))
    # The saved files alone must reproduce the trained tokenizer, post-processor included.
    probe = texts[0][:120]
    raw = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    assert loaded(probe)["input_ids"] == raw.encode(probe).ids == tok.encode(probe).ids
    assert loaded(probe)["input_ids"][0] == 0 and loaded(probe)["input_ids"][-1] == 2
    mask = [t for t in json.loads((out_dir / "tokenizer.json").read_text())["added_tokens"] if t["content"] == "<mask>"]
    assert mask and mask[0]["id"] == 4, mask
    # `fast` is only ever saved (encoding with padding/truncation would leak those settings into the
    # tokenizer.json that save_pretrained writes); `loaded` is what the fixtures are encoded with.
    return fast, loaded, used


def ensure_special_tokens_map(tokenizer: PreTrainedTokenizerFast, out_dir: Path) -> None:
    """special_tokens_map.json as transformers 4.x wrote it, if this transformers no longer does."""
    path = out_dir / "special_tokens_map.json"
    if path.exists():
        return
    entries = {}
    for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]:
        value = getattr(tokenizer, key)
        lstrip = key == "mask_token"
        entries[key] = {
            "content": str(value),
            "lstrip": lstrip,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
        }
    write_json(path, entries)


def encode(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    enc = tokenizer(
        texts,
        truncation=True,
        max_length=MAX_LENGTH,
        padding="max_length",
        return_tensors="pt",
    )
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def n_pieces(tokenizer, text: str) -> int:
    """Pieces of `text` before truncation (the raw tokenizer.json, so transformers does not warn about length)."""
    counter = getattr(tokenizer, "_golden_counter", None)
    if counter is None:
        counter = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        counter.no_truncation()
        counter.no_padding()
        tokenizer._golden_counter = counter
    return len(counter.encode(text, add_special_tokens=False).ids)


# --------------------------------------------------------------------------------------------------
# models


def make_config(vocab_size: int, task: str, **extra) -> RobertaConfig:
    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=MAX_LENGTH + 2,
        type_vocab_size=1,
        initializer_range=0.02,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        **extra,
    )
    config.elibadcode_task = task
    config._attn_implementation = "eager"
    return config


@torch.no_grad()
def randomize(model: nn.Module, seed: int) -> None:
    """Every parameter random and O(1)-ish, so no bug hides behind zero biases or unit LayerNorms.

    transformers' own init (std 0.02, zero biases, LayerNorm 1/0) would make the tiny model's outputs
    almost constant; these scales keep attention, GELU and the heads well away from trivial values.
    """
    gen = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        if "LayerNorm" in name and name.endswith("weight"):
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
        elif name.endswith("bias"):
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))
        elif "embeddings" in name:
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
        elif name.endswith(("query.weight", "key.weight")):
            # Sharper attention than uniform averaging, so outputs depend clearly on the input.
            p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / p.shape[1] ** 0.5))
        else:  # other Linear weights [out, in]
            p.copy_(torch.randn(p.shape, generator=gen) * (1.2 / p.shape[1] ** 0.5))


@torch.no_grad()
def centre_head(model: nn.Module, inputs: dict) -> None:
    """Shift classifier.out_proj.bias so the fixture batch splits evenly between the two labels.

    With random weights the head's bias dominates and every input gets the same label; the threshold
    (prob > 0.5, argmax) is only tested if both labels occur. The decision value (the single logit, or
    logit1 - logit0) is moved so that zero lies midway between the two middle values of the batch.
    """
    model.eval()
    logits = model(**inputs).logits
    score = logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]
    ordered = torch.sort(score).values
    n = ordered.numel()
    low, high = ordered[n // 2 - 1], ordered[n // 2]
    assert high - low > 1e-2, f"middle scores too close to split the batch: {ordered.tolist()}"
    shift = float((low + high) / 2)
    bias = model.classifier.out_proj.bias
    if logits.shape[1] == 1:
        bias[0] -= shift
    else:
        bias[1] -= shift / 2
        bias[0] += shift / 2


class RobertaCloneHead(nn.Module):
    """CodeXGLUE BigCloneBench head: the two <s> vectors side by side -> dense -> tanh -> out_proj."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(2 * config.hidden_size, config.hidden_size)
        drop = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(drop)
        self.out_proj = nn.Linear(config.hidden_size, 2)

    def forward(self, cls_a: torch.Tensor, cls_b: torch.Tensor) -> torch.Tensor:
        x = torch.cat([cls_a, cls_b], dim=-1)
        x = self.dropout(x)
        x = torch.tanh(self.dense(x))
        x = self.dropout(x)
        return self.out_proj(x)


class RobertaForCloneDetection(RobertaPreTrainedModel):
    """Two functions, each encoded separately; logits [B, 2] over (not clone, clone)."""

    def __init__(self, config: RobertaConfig) -> None:
        super().__init__(config)
        self.roberta = RobertaModel(config, add_pooling_layer=False)
        self.classifier = RobertaCloneHead(config)
        self.post_init()

    def forward(
        self,
        input_ids_a: torch.Tensor,
        attention_mask_a: torch.Tensor,
        input_ids_b: torch.Tensor,
        attention_mask_b: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> SequenceClassifierOutput:
        batch = input_ids_a.shape[0]
        hidden = self.roberta(
            input_ids=torch.cat([input_ids_a, input_ids_b], dim=0),
            attention_mask=torch.cat([attention_mask_a, attention_mask_b], dim=0),
        ).last_hidden_state
        cls = hidden[:, 0, :]
        logits = self.classifier(cls[:batch], cls[batch:])
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def save_model(model: nn.Module, tokenizer, out_dir: Path, architectures: list[str]) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    model.config.architectures = architectures
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    ensure_special_tokens_map(tokenizer, out_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert sha256(out_dir / name) == sha256(FIXTURES / "tokenizer" / name), f"{out_dir}/{name} differs from tokenizer/"
    files = sorted(p.name for p in out_dir.iterdir())
    assert "model.safetensors" in files and "config.json" in files, files
    assert not any(n.endswith(".bin") for n in files), files


class LoadWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# What transformers says (its LOAD REPORT, or older "were not initialized"/"were not used" warnings)
# when a checkpoint does not match the class exactly.
_LOAD_PROBLEM_WORDS = ("missing", "unexpected", "mismatch", "initialized", "not used", "unused")


def load_strict(cls, path: Path):
    """from_pretrained (safetensors only, eager attention) that fails on any missing/unexpected/mismatched
    weight, whether transformers reports it in the loading info, its logger, or on stderr."""
    handler = LoadWarnings()
    tlog = logging.getLogger("transformers")
    tlog.addHandler(handler)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            model, info = cls.from_pretrained(
                str(path), use_safetensors=True, output_loading_info=True, attn_implementation="eager"
            )
    finally:
        tlog.removeHandler(handler)
    messages = handler.messages + [line for line in stderr.getvalue().splitlines() if line.strip()]
    problems = {k: sorted(map(str, v)) for k, v in info.items() if v}
    bad = [m for m in messages if any(w in m.lower() for w in _LOAD_PROBLEM_WORDS)]
    if problems or bad:
        raise RuntimeError(f"{path}: loading was not exact: {problems} {bad}")
    model.eval()
    return model, messages


def state_names(model: nn.Module) -> list[str]:
    return sorted(model.state_dict().keys())


# --------------------------------------------------------------------------------------------------
# sample selection (deterministic, file order)


def pick_devign(data: Data, tokenizer) -> list[dict]:
    """Six test functions: for each target 0/1, one short (<= 30 pieces), one medium (31..62), one truncated."""
    buckets = [("short", 3, 30), ("medium", 31, MAX_LENGTH - 2), ("truncated", MAX_LENGTH - 1, 10**9)]
    picked: dict[tuple[str, int], dict] = {}
    for row_index, row in enumerate(data.devign_test):
        n = n_pieces(tokenizer, row["func"])
        for name, lo, hi in buckets:
            key = (name, row["target"])
            if lo <= n <= hi and key not in picked:
                picked[key] = {"row_index": row_index, "row": row, "pieces": n, "bucket": name}
        if len(picked) == 6:
            break
    if len(picked) != 6:
        fail(f"devign/test.jsonl: could not find functions for every length bucket (found {sorted(picked)})")
    order = [(b, t) for b, _, _ in buckets for t in (0, 1)]
    return [picked[k] for k in order]


def pick_clone_pairs(data: Data, tokenizer) -> list[dict]:
    """Four test pairs, two per label: the pair whose shorter side is shortest (so padding is exercised;
    few Java methods fit in 62 pieces), then the first other pair of that label in file order."""
    cache: dict[str, int] = {}

    def pieces(idx: str) -> int:
        if idx not in cache:
            cache[idx] = n_pieces(tokenizer, data.bcb_by_id[idx])
        return cache[idx]

    picked: list[dict] = []
    for label in (1, 0):
        rows = [(i, p) for i, p in enumerate(data.bcb_pairs) if p["label"] == label]
        if len(rows) < 2:
            fail(f"bigclonebench/test.jsonl: fewer than two pairs with label {label}")
        shortest = min(rows, key=lambda r: (min(pieces(r[1]["idx1"]), pieces(r[1]["idx2"])), r[0]))
        first = next(r for r in rows if r[0] != shortest[0])
        for row_index, pair in (shortest, first):
            picked.append({"row_index": row_index, "pair": pair})
    return picked


def pick_search(data: Data, tokenizer) -> list[dict]:
    """Four (query, code) rows of retrieval_test: the first whose code fits untruncated, then the first three others."""
    fits = [i for i, r in enumerate(data.cosqa_retrieval_test) if n_pieces(tokenizer, r["code"]) <= MAX_LENGTH - 2]
    if not fits:
        fail("cosqa/retrieval_test.jsonl: no function fits in maxLength")
    indices = [fits[0]] + [i for i in range(len(data.cosqa_retrieval_test)) if i != fits[0]][:3]
    return [{"row_index": i, "row": data.cosqa_retrieval_test[i]} for i in indices]


# --------------------------------------------------------------------------------------------------
# phases


def encoding_record(enc: dict[str, torch.Tensor]) -> dict:
    return {"input_ids": ints(enc["input_ids"]), "attention_mask": ints(enc["attention_mask"])}


def model_record(path: Path, model: nn.Module) -> dict:
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        names = sorted(f.keys())
        dtypes = sorted({str(f.get_slice(n).get_dtype()) for n in names})
    assert names == state_names(model), f"{path}: safetensors names differ from the model's state_dict"
    return {
        "dir": str(path.relative_to(FIXTURES)),
        "mode": "eval (dropout off)" if not model.training else "train",
        "attn_implementation": "eager",
        "safetensors_dtypes": dtypes,
        "tensor_names": names,
    }


def common_header(task: str) -> dict:
    return {
        "task": task,
        "max_length": MAX_LENGTH,
        "tokenization": "tokenizer(texts, truncation=True, max_length=64, padding='max_length'): "
        "<s> + first 62 pieces + </s>, right-padded with <pad> (id 1), attention_mask 1 on real tokens",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "float_format": "float32 values written as the shortest decimal that reads back to the same float32",
    }


def build_sequence_heads(data: Data, tokenizer, saver, sources: list) -> None:
    picks = pick_devign(data, tokenizer)
    texts = [p["row"]["func"] for p in picks]
    labels = [p["row"]["target"] for p in picks]
    enc = encode(tokenizer, texts)
    lengths = enc["attention_mask"].sum(1).tolist()
    assert min(lengths) < MAX_LENGTH and max(lengths) == MAX_LENGTH, lengths
    inputs = []
    for p, length in zip(picks, lengths):
        r = p["row"]
        inputs.append(
            {
                "source": {
                    "dataset": "devign",
                    "file": "devign/test.jsonl",
                    "row_index": p["row_index"],
                    "idx": r["idx"],
                    "project": r["project"],
                    "commit_id": r["commit_id"],
                    "target": r["target"],
                },
                "length_bucket": p["bucket"],
                "pieces_untruncated": p["pieces"],
                "tokens": length,
                "text": r["func"],
            }
        )
        sources.append({"dataset": "devign", "file": "devign/test.jsonl", "row_index": p["row_index"], "idx": r["idx"]})

    for task, num_labels in (("classify", 2), ("defect", 1)):
        seed = SEEDS[task]
        seed_everything(seed)
        config = make_config(len(tokenizer), task, num_labels=num_labels)
        model = RobertaForSequenceClassification(config)
        randomize(model, seed)
        centre_head(model, enc)
        model.eval()
        out_dir = FIXTURES / "models" / task
        save_model(model, saver, out_dir, ["RobertaForSequenceClassification"])
        reloaded, _ = load_strict(RobertaForSequenceClassification, out_dir)
        with torch.no_grad():
            logits = reloaded(**enc).logits
            direct = model(**enc).logits
        # Not bit-identical: the loaded tensors sit at other addresses, so SIMD paths differ in the last ulp.
        assert torch.allclose(logits, direct, atol=1e-6, rtol=0), "saved and in-memory model disagree"
        record = common_header(task)
        record["model"] = model_record(out_dir, reloaded)
        record["inputs"] = inputs
        record.update(encoding_record(enc))
        record["logits"] = floats(logits)
        if task == "classify":
            record["head"] = "RobertaForSequenceClassification, num_labels 2: <s> -> dropout -> dense -> tanh -> dropout -> out_proj; probabilities = softmax(logits)"
            probs = torch.softmax(logits, dim=-1)
            record["probabilities"] = floats(probs)
            record["labels"] = ints(probs.argmax(-1))
        else:
            record["head"] = "RobertaForSequenceClassification, num_labels 1 (CodeXGLUE defect detection): probability = sigmoid(logit); label = probability > 0.5"
            probs = torch.sigmoid(logits[:, 0])
            record["probabilities"] = floats(probs)
            record["labels"] = [int(p > 0.5) for p in probs.tolist()]
            record["gradients"] = defect_gradients(reloaded, enc, labels)
        write_json(FIXTURES / "expected" / f"{task}.json", record)


def defect_gradients(model: RobertaForSequenceClassification, enc: dict, labels: list[int]) -> dict:
    model.eval()
    model.zero_grad(set_to_none=True)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    y = torch.tensor(labels, dtype=torch.float32)
    embeds = model.roberta.embeddings.word_embeddings(ids)
    embeds.retain_grad()
    logits = model(inputs_embeds=embeds, attention_mask=mask).logits[:, 0]
    with torch.no_grad():
        via_ids = model(input_ids=ids, attention_mask=mask).logits[:, 0]
    assert torch.allclose(logits, via_ids, atol=1e-6, rtol=0), "inputs_embeds path differs from input_ids path"
    loss = F.binary_cross_entropy(torch.sigmoid(logits), y)
    loss.backward()
    params = dict(model.named_parameters())
    word = params["roberta.embeddings.word_embeddings.weight"].grad
    unique_ids = sorted(set(ids.flatten().tolist()))
    pad = model.config.pad_token_id
    assert torch.count_nonzero(word[pad]) == 0
    for i in unique_ids:  # an embedding row's gradient is the sum over the positions that hold its id
        if i != pad:
            summed = embeds.grad[ids == i].sum(0)
            assert torch.allclose(word[i], summed, atol=1e-7, rtol=1e-5), f"word-embedding gradient of id {i}"
    return {
        "mode": "eval (dropout off), gradients enabled",
        "labels": labels,
        "labels_source": "devign target of each input (1 = vulnerable)",
        "loss_formula": "mean over the batch of binary cross-entropy between sigmoid(logit) and the 0/1 label "
        "(torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits[:, 0]), labels))",
        "forward": "inputs_embeds = roberta.embeddings.word_embeddings(input_ids), passed as inputs_embeds with the "
        "same attention_mask; the model still adds position and token-type embeddings. With right padding the "
        "positions of real tokens equal the padding-aware ones of the input_ids path (checked: same logits)",
        "logits": floats(logits),
        "loss": f32(loss.item()),
        "d_loss_d_inputs_embeds": floats(embeds.grad),
        "d_loss_d_params": {
            "classifier.out_proj.weight": floats(params["classifier.out_proj.weight"].grad),
            "roberta.encoder.layer.0.attention.self.query.weight": floats(
                params["roberta.encoder.layer.0.attention.self.query.weight"].grad
            ),
            "roberta.embeddings.word_embeddings.weight": {
                "format": "rows for the ids occurring in input_ids only, as {id: row}; every other row is 0",
                "note": "nn.Embedding(padding_idx=1): PyTorch gives the <pad> row (id 1) zero gradient; every other "
                "row equals the sum of d_loss_d_inputs_embeds over the positions holding that id",
                "rows": {str(i): floats(word[i]) for i in unique_ids},
            },
        },
    }


def build_clone(data: Data, tokenizer, saver, sources: list) -> None:
    picks = pick_clone_pairs(data, tokenizer)
    texts_a = [data.bcb_by_id[p["pair"]["idx1"]] for p in picks]
    texts_b = [data.bcb_by_id[p["pair"]["idx2"]] for p in picks]
    enc_a, enc_b = encode(tokenizer, texts_a), encode(tokenizer, texts_b)
    seed = SEEDS["clone"]
    seed_everything(seed)
    model = RobertaForCloneDetection(make_config(len(tokenizer), "clone", num_labels=2))
    randomize(model, seed)
    centre_head(model, dict(input_ids_a=enc_a["input_ids"], attention_mask_a=enc_a["attention_mask"],
                            input_ids_b=enc_b["input_ids"], attention_mask_b=enc_b["attention_mask"]))
    model.eval()
    out_dir = FIXTURES / "models" / "clone"
    save_model(model, saver, out_dir, ["RobertaForCloneDetection"])
    reloaded, _ = load_strict(RobertaForCloneDetection, out_dir)
    names = state_names(reloaded)
    assert all(n.startswith(("roberta.", "classifier.dense.", "classifier.out_proj.")) for n in names), names
    args = dict(
        input_ids_a=enc_a["input_ids"],
        attention_mask_a=enc_a["attention_mask"],
        input_ids_b=enc_b["input_ids"],
        attention_mask_b=enc_b["attention_mask"],
    )
    with torch.no_grad():
        logits = reloaded(**args).logits
        assert torch.allclose(logits, model(**args).logits, atol=1e-6, rtol=0)
        # Encoding the two sides in one batch or separately gives the same <s> vectors.
        sep_a = reloaded.roberta(**enc_a).last_hidden_state[:, 0]
        sep_b = reloaded.roberta(**enc_b).last_hidden_state[:, 0]
        assert torch.allclose(reloaded.classifier(sep_a, sep_b), logits, atol=1e-6, rtol=0)
    probs = torch.softmax(logits, dim=-1)
    pairs = []
    for p, a, b in zip(picks, texts_a, texts_b):
        pair = p["pair"]
        pairs.append(
            {
                "source": {
                    "dataset": "bigclonebench",
                    "file": "bigclonebench/test.jsonl (+ data.jsonl for the code)",
                    "row_index": p["row_index"],
                    "idx1": pair["idx1"],
                    "idx2": pair["idx2"],
                    "label": pair["label"],
                },
                "text_a": a,
                "text_b": b,
            }
        )
        sources.append({"dataset": "bigclonebench", "file": "bigclonebench/test.jsonl", "row_index": p["row_index"],
                        "idx1": pair["idx1"], "idx2": pair["idx2"]})
    record = common_header("clone")
    record["head"] = (
        "RobertaForCloneDetection (defined in scripts/golden/generate.py): each function encoded separately; "
        "x = concat(last_hidden_state_a[:, 0], last_hidden_state_b[:, 0]) -> dropout -> classifier.dense (2H->H) -> "
        "tanh -> dropout -> classifier.out_proj (H->2); probabilities = softmax(logits), index 1 = clone"
    )
    record["model"] = model_record(out_dir, reloaded)
    record["pairs"] = pairs
    record["a"] = encoding_record(enc_a)
    record["b"] = encoding_record(enc_b)
    record["logits"] = floats(logits)
    record["probabilities"] = floats(probs)
    record["labels"] = ints(probs.argmax(-1))
    write_json(FIXTURES / "expected" / "clone.json", record)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1)


def build_search(data: Data, tokenizer, saver, sources: list) -> None:
    picks = pick_search(data, tokenizer)
    codes = [p["row"]["code"] for p in picks]
    queries = [p["row"]["doc"] for p in picks]
    enc_code, enc_query = encode(tokenizer, codes), encode(tokenizer, queries)
    seed = SEEDS["search"]
    seed_everything(seed)
    model = RobertaModel(make_config(len(tokenizer), "search"), add_pooling_layer=True)
    randomize(model, seed)
    model.eval()
    out_dir = FIXTURES / "models" / "search"
    save_model(model, saver, out_dir, ["RobertaModel"])
    reloaded, _ = load_strict(RobertaModel, out_dir)
    names = state_names(reloaded)
    assert not any(n.startswith("roberta.") for n in names) and any(n.startswith("pooler.") for n in names), names
    with torch.no_grad():
        code_mean = mean_pool(reloaded(**enc_code).last_hidden_state, enc_code["attention_mask"])
        query_mean = mean_pool(reloaded(**enc_query).last_hidden_state, enc_query["attention_mask"])
    code_emb = F.normalize(code_mean, dim=-1)
    query_emb = F.normalize(query_mean, dim=-1)
    cosine = query_emb @ code_emb.T
    items = []
    for p in picks:
        r = p["row"]
        items.append(
            {
                "source": {
                    "dataset": "cosqa",
                    "file": "cosqa/retrieval_test.jsonl",
                    "row_index": p["row_index"],
                    "idx": r["idx"],
                    "retrieval_idx": r["retrieval_idx"],
                },
                "query": r["doc"],
                "code": r["code"],
            }
        )
        sources.append({"dataset": "cosqa", "file": "cosqa/retrieval_test.jsonl", "row_index": p["row_index"], "idx": r["idx"]})
    record = common_header("search")
    record["head"] = (
        "bi-encoder = plain RobertaModel (its pooler is saved but unused): embedding = mean of last_hidden_state over "
        "positions with attention_mask 1, then L2-normalised; similarity = dot product of normalised embeddings (cosine)"
    )
    record["model"] = model_record(out_dir, reloaded)
    record["items"] = items
    record["code"] = encoding_record(enc_code)
    record["query"] = encoding_record(enc_query)
    record["code_mean_unnormalised"] = floats(code_mean)
    record["query_mean_unnormalised"] = floats(query_mean)
    record["code_embeddings"] = floats(code_emb)
    record["query_embeddings"] = floats(query_emb)
    record["cosine"] = {"rows": "queries", "columns": "codes", "values": floats(cosine)}
    write_json(FIXTURES / "expected" / "search.json", record)


def write_manifest(tokenizer_sources: list[dict], sources: list[dict]) -> None:
    files = sorted(
        p for p in FIXTURES.rglob("*")
        if p.is_file() and p.name != "MANIFEST.json" and "roundtrip" not in p.relative_to(FIXTURES).parts[0]
    )
    manifest = {
        "generator": "scripts/golden/generate.py",
        "regenerate": "npm run golden",
        "versions": versions(),
        "seeds": SEEDS,
        "max_length": MAX_LENGTH,
        "tokenizer": {
            "kind": "byte-level BPE trained with the tokenizers library",
            "vocab_size_target": VOCAB_SIZE,
            "special_tokens": {t: i for i, t in enumerate(SPECIAL_TOKENS)},
            "post_processor": "RobertaProcessing: <s> ... </s>",
            "training_corpus": tokenizer_sources,
        },
        "model_config": "hidden 32, 2 layers, 4 heads, intermediate 64, gelu, layer_norm_eps 1e-5, pad 1, "
        f"type_vocab_size 1, max_position_embeddings {MAX_LENGTH + 2}; every parameter drawn from a seeded "
        "torch.Generator (see randomize() in generate.py); then classifier.out_proj.bias shifted so each fixture "
        "batch has both labels (centre_head())",
        "datasets": DATASETS,
        "texts_used": sources,
        "data_terms": "The code and queries in these fixtures are dataset excerpts under C-UDA 1.0 (computational use "
        "only); the attribution above must be kept with them.",
        "files": {str(p.relative_to(FIXTURES)): sha256(p) for p in files},
    }
    write_json(FIXTURES / "MANIFEST.json", manifest)


# --------------------------------------------------------------------------------------------------
# round trip: a checkpoint written by the TypeScript runtime must load in transformers unchanged


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def find_node() -> str | None:
    """node >= 24, using scripts/setup.sh (Node 24 on PATH) when the system one is older."""
    probe = subprocess.run(
        ["bash", "-c", f"source '{ROOT}/scripts/setup.sh' >/dev/null 2>&1 && command -v node"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    path = probe.stdout.strip().splitlines()[-1] if probe.returncode == 0 and probe.stdout.strip() else None
    return path or shutil.which("node")


def roundtrip() -> dict:
    # ELIBADCODE_ROUNDTRIP_SCRIPT lets this phase itself be tested with a stand-in script.
    script = Path(os.environ.get("ELIBADCODE_ROUNDTRIP_SCRIPT", ROOT / "scripts" / "golden" / "roundtrip.ts")).resolve()
    out_dir = FIXTURES / "roundtrip"
    result_path = FIXTURES / "roundtrip.json"
    base = {
        "tolerance": ROUNDTRIP_TOLERANCE,
        "transformersVersion": transformers.__version__,
        "checkedAt": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "script": rel(script),
    }
    if not (FIXTURES / "models" / "defect" / "model.safetensors").is_file():
        fail("models/defect is missing: run the full generator first")
    if not script.is_file():
        result = {"ok": None, "reason": f"{rel(script)} does not exist yet; nothing to check", **base}
        write_json(result_path, result)
        log.warning("roundtrip: %s", result["reason"])
        return result
    node = find_node()
    if node is None:
        result = {"ok": None, "reason": "node (>= 24) not found; `source scripts/setup.sh` installs it", **base}
        write_json(result_path, result)
        log.warning("roundtrip: %s", result["reason"])
        return result
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    cmd = [node, rel(script), rel(FIXTURES), rel(out_dir)]
    log.info("roundtrip: %s", " ".join(cmd))
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    if proc.returncode != 0:
        result = {"ok": False, "reason": f"roundtrip.ts exited {proc.returncode}", "output_tail": proc.stdout[-4000:], **base}
        write_json(result_path, result)
        fail(f"roundtrip: {result['reason']}:\n{proc.stdout[-4000:]}")
    outputs_path = out_dir / "outputs.json"
    if not outputs_path.is_file():
        result = {"ok": False, "reason": "roundtrip.ts wrote no outputs.json", **base}
        write_json(result_path, result)
        fail(f"roundtrip: {result['reason']}")
    outputs = json.loads(outputs_path.read_text())
    files = {str(p.relative_to(out_dir)): sha256(p) for p in sorted(out_dir.rglob("*")) if p.is_file()}
    problems: list[str] = []
    max_abs = None
    try:
        model, messages = load_strict(RobertaForSequenceClassification, out_dir)
        if messages:
            problems.append(f"transformers warned while loading: {messages}")
        ids = torch.tensor(outputs["input_ids"], dtype=torch.long)
        mask = torch.tensor(outputs["attention_mask"], dtype=torch.long)
        expected = torch.tensor(outputs["logits"], dtype=torch.float32)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
        if logits.shape != expected.shape:
            problems.append(f"logits shape {tuple(logits.shape)} != outputs.json {tuple(expected.shape)}")
        else:
            max_abs = float((logits - expected).abs().max())
            if not max_abs <= ROUNDTRIP_TOLERANCE:
                problems.append(f"max |transformers - TypeScript| = {max_abs} > {ROUNDTRIP_TOLERANCE}")
        original, _ = load_strict(RobertaForSequenceClassification, FIXTURES / "models" / "defect")
        with torch.no_grad():
            before = original(input_ids=ids, attention_mask=mask).logits
        changed = float((before - logits).abs().max())
        if changed == 0.0:
            problems.append("the round-tripped checkpoint computes exactly what models/defect does: were the weights changed?")
    except Exception as e:  # noqa: BLE001 - every failure is reported in roundtrip.json
        problems.append(f"{type(e).__name__}: {e}")
        changed = None
    result = {
        "ok": not problems,
        "maxAbsDiff": max_abs,
        "maxAbsChangeFromModelsDefect": changed,
        **base,
        "problems": problems,
        "files": files,
    }
    write_json(result_path, result)
    if problems:
        fail("roundtrip failed: " + "; ".join(problems))
    log.info("roundtrip: ok, max abs diff %.3g", max_abs)
    return result


# --------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roundtrip-only", action="store_true", help="only run the TypeScript -> transformers check")
    parser.add_argument("--skip-roundtrip", action="store_true", help="do not run the round-trip phase")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="golden: %(message)s")
    transformers.logging.set_verbosity_warning()
    transformers.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    if args.roundtrip_only:
        roundtrip()
        return

    seed_everything(SEEDS["python"])
    data = Data(DATA_DIR)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    # The round-trip checkpoint is regenerated by every run; only roundtrip.json is kept in git.
    (FIXTURES / ".gitignore").write_text("# written by scripts/golden/generate.py\n/roundtrip/\n")
    for sub in ("tokenizer", "models", "expected"):
        if (FIXTURES / sub).exists():
            shutil.rmtree(FIXTURES / sub)
    saver, tokenizer, tokenizer_sources = train_tokenizer(data, FIXTURES / "tokenizer")
    log.info("tokenizer: %d tokens", len(tokenizer))
    sources: list[dict] = []
    build_sequence_heads(data, tokenizer, saver, sources)
    build_clone(data, tokenizer, saver, sources)
    build_search(data, tokenizer, saver, sources)
    write_manifest(tokenizer_sources, sources)
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file() and "roundtrip" not in str(p.relative_to(FIXTURES)))
    log.info("fixtures written to %s (%.0f KiB)", FIXTURES.relative_to(ROOT), total / 1024)
    if not args.skip_roundtrip:
        roundtrip()


if __name__ == "__main__":
    main()
