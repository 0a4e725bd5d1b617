#!/usr/bin/env python3
"""onnxruntime baseline for `seqless bench forward`: the same model as an ONNX graph.

Run it through scripts/onnx_baseline.sh, which installs the dependencies.

  onnx_baseline.sh MODEL_DIR --bytes 65536,1048576 [--threads 1] [--runs 5]
      time onnxruntime's forward at each byte length (median of --runs after a warm-up),
      one JSON object per length on stdout
  onnx_baseline.sh MODEL_DIR --check SEQLESS_BIN
      compare logits with `SEQLESS_BIN classify --json` on a few inputs; exit 1 on mismatch
  onnx_baseline.sh MODEL_DIR --compare SEQLESS_BIN [--base OLD_BIN] --rounds 3 --csv OUT
      back-to-back A/B: each round runs `SEQLESS_BIN bench forward --json` (and OLD_BIN's,
      if given), then onnxruntime, at every length with the same threads and runs; one CSV
      row per round, length and program

The graph is built from config.json and model.safetensors with the standard operators of
opset 17 (Gather, Conv, MaxPool, Relu, LSTM, Gemm, ...), for the padded length T0 of each
input, as the model's maths is written in docs: byte ids (byte + 1, 0 pads) to embeddings,
then per layer a "same" convolution, max-pool, ReLU, the per-block max into an LSTM, the
LSTM output (or an affine map of it) as gamma/beta per block, and after the last layer a
global max and the classifier.
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

OPSET = 17


class BaselineError(Exception):
    """A problem with the input that the user must fix; exit code 2."""


def load(model_dir):
    try:
        with open(os.path.join(model_dir, "config.json")) as f:
            config = json.load(f)
        tensors = load_file(os.path.join(model_dir, "model.safetensors"))
    except (OSError, ValueError) as e:
        raise BaselineError(f"cannot read the model in {model_dir}: {e}") from e
    if config.get("format") != "seqless-tfilm/1":
        raise BaselineError(f"{model_dir}/config.json: format is not seqless-tfilm/1")
    return config, tensors


def alignment(config):
    """Smallest length that every layer divides into whole blocks (config.rs `alignment`)."""
    unit, pooled = 1, 1
    for layer in config["layers"]:
        pooled *= layer["pool"]
        unit = math.lcm(unit, pooled * layer["block_len"])
    return unit


def token_ids(config, data):
    unit = alignment(config)
    t0 = -(-max(len(data), 1) // unit) * unit
    ids = np.zeros(t0, dtype=np.int64)
    ids[: len(data)] = np.frombuffer(data, dtype=np.uint8).astype(np.int64) + 1
    return ids


class Graph:
    """Accumulates nodes and initialisers; every value is named after the node making it."""

    def __init__(self):
        self.nodes, self.weights = [], []

    def constant(self, name, value):
        self.weights.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def shape(self, name, dims):
        return self.constant(name, np.asarray(dims, dtype=np.int64))

    def op(self, op_type, inputs, name, outputs=1, **attrs):
        names = [name] if outputs == 1 else [f"{name}.{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=name, **attrs))
        return names[0] if outputs == 1 else names


def onnx_lstm_weights(w_ih, w_hh, b_ih, b_hh):
    """PyTorch stacks the gates i, f, g, o; ONNX's LSTM wants i, o, f, c (c is g)."""
    hidden = w_hh.shape[1]
    order = [0, 3, 1, 2]

    def regroup(t):
        return np.concatenate([t[g * hidden : (g + 1) * hidden] for g in order])

    w = regroup(w_ih)[np.newaxis]
    r = regroup(w_hh)[np.newaxis]
    b = np.concatenate([regroup(b_ih), regroup(b_hh)])[np.newaxis]
    return w, r, b


def build(config, tensors, t0):
    """The forward pass for inputs of exactly `t0` ids: "ids" int64 [t0] -> "logits" [L]."""
    if t0 % alignment(config):
        raise BaselineError(f"t0 {t0} is not a multiple of {alignment(config)}")
    g = Graph()
    x = g.op("Gather", [g.constant("embedding", tensors["embedding.weight"]), "ids"], "embed")
    x = g.op("Transpose", [x], "embed_ct", perm=[1, 0])  # [E, T]
    x = g.op("Unsqueeze", [x, g.shape("axis0", [0])], "x0")  # [1, E, T]
    rows = t0
    gate = config["gate_activation"]
    if gate == "sigmoid":
        activations = dict(activations=["Sigmoid", "Tanh", "Tanh"])
    elif gate == "hard_sigmoid":
        activations = dict(
            activations=["HardSigmoid", "Tanh", "Tanh"],
            activation_alpha=[0.2, 0.0, 0.0],
            activation_beta=[0.5, 0.0, 0.0],
        )
    else:
        raise BaselineError(f"unknown gate_activation {gate!r}")
    last = len(config["layers"]) - 1
    for i, layer in enumerate(config["layers"]):
        c, k, pool, block = (layer[f] for f in ("channels", "kernel", "pool", "block_len"))
        p = f"layers.{i}"
        left = (k - 1) // 2
        a = g.op(
            "Conv",
            [x, g.constant(f"{p}.w", tensors[f"{p}.conv.weight"]), g.constant(f"{p}.b", tensors[f"{p}.conv.bias"])],
            f"{p}.conv",
            kernel_shape=[k],
            pads=[left, k - 1 - left],
        )
        if pool > 1:
            a = g.op("MaxPool", [a], f"{p}.pool", kernel_shape=[pool], strides=[pool])
        a = g.op("Relu", [a], f"{p}.relu")  # [1, C, T_l]
        rows //= pool
        blocks = rows // block
        # Per-block max as a pooling with window and stride b, then time-major for the LSTM.
        s = g.op("MaxPool", [a], f"{p}.block_max", kernel_shape=[block], strides=[block])
        s = g.op("Transpose", [s], f"{p}.lstm_in", perm=[2, 0, 1])  # [B, 1, C]
        w, r, b = onnx_lstm_weights(
            *(tensors[f"{p}.tfilm.lstm.{n}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        )
        y = g.op(
            "LSTM",
            [s, g.constant(f"{p}.W", w), g.constant(f"{p}.R", r), g.constant(f"{p}.B", b)],
            f"{p}.lstm",
            hidden_size=c,
            **activations,
        )  # [B, 1, 1, C]
        h = g.op("Reshape", [y, g.shape(f"{p}.bc", [blocks, c])], f"{p}.h")
        if config["modulation"] == "affine":
            both = g.op(
                "Gemm",
                [h, g.constant(f"{p}.aw", tensors[f"{p}.tfilm.affine.weight"]),
                 g.constant(f"{p}.ab", tensors[f"{p}.tfilm.affine.bias"])],
                f"{p}.affine",
                transB=1,
            )  # [B, 2C]
            gamma, beta = g.op("Split", [both, g.shape(f"{p}.halves", [c, c])], f"{p}.split", outputs=2, axis=1)
        elif config["modulation"] == "scale":
            gamma, beta = h, None
        else:
            raise BaselineError(f"unknown modulation {config['modulation']!r}")
        # a viewed as [1, C, B, b] times gamma viewed as [1, C, B, 1] (plus beta).
        per_block = g.shape(f"{p}.cb1", [1, c, blocks, 1])
        a4 = g.op("Reshape", [a, g.shape(f"{p}.cbb", [1, c, blocks, block])], f"{p}.a4")
        gamma = g.op("Reshape", [g.op("Transpose", [gamma], f"{p}.gamma_t", perm=[1, 0]), per_block], f"{p}.gamma")
        x = g.op("Mul", [a4, gamma], f"{p}.scaled")
        if beta is not None:
            beta = g.op("Reshape", [g.op("Transpose", [beta], f"{p}.beta_t", perm=[1, 0]), per_block], f"{p}.beta")
            x = g.op("Add", [x, beta], f"{p}.modulated")
        if i < last:
            x = g.op("Reshape", [x, g.shape(f"{p}.ct", [1, c, rows])], f"{p}.out")
    pooled = g.op("ReduceMax", [x], "global_max", axes=[2, 3], keepdims=0)  # [1, C]
    logits = g.op(
        "Gemm",
        [pooled, g.constant("cls.w", tensors["classifier.weight"]), g.constant("cls.b", tensors["classifier.bias"])],
        "classifier",
        transB=1,
    )
    g.op("Flatten", [logits], "flat", axis=0)
    g.op("Squeeze", ["flat", g.shape("axis0b", [0])], "logits")
    graph = helper.make_graph(
        g.nodes,
        "seqless_tfilm",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [t0])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [len(config["labels"])])],
        g.weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def session(model, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def logits(config, tensors, data, threads=1):
    ids = token_ids(config, data)
    return session(build(config, tensors, len(ids)), threads).run(["logits"], {"ids": ids})[0]


def time_forward(config, tensors, n_bytes, threads, runs, seed=1):
    """Median and fastest of `runs` timed forwards after one warm-up, in milliseconds."""
    data = np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()
    ids = token_ids(config, data)
    sess = session(build(config, tensors, len(ids)), threads)
    feed = {"ids": ids}
    sess.run(["logits"], feed)
    ms = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(["logits"], feed)
        ms.append((time.perf_counter() - start) * 1e3)
    return {"bytes": n_bytes, "t0": len(ids), "median_ms": float(np.median(ms)),
            "min_ms": min(ms), "runs": runs, "threads": threads}


def check_inputs():
    """A few inputs: short text, multi-byte text, and random bytes of several lengths."""
    rng = np.random.default_rng(7)
    yield b"Guten Morgen, wie geht es dir?"
    yield "Ceci n'est pas une pipe. \u3053\u3093\u306b\u3061\u306f".encode()
    for n in (1, 777, 5000):
        yield rng.integers(0, 256, n, dtype=np.uint8).tobytes()


def check(model_dir, config, tensors, seqless, tolerance):
    worst = 0.0
    for data in check_inputs():
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(data)
            f.flush()
            out = subprocess.run([seqless, "classify", "--model", model_dir, "--file", f.name, "--json"],
                                 capture_output=True, text=True)
        if out.returncode != 0:
            raise BaselineError(f"{seqless} classify failed ({out.returncode}): {out.stderr.strip()}")
        want = np.asarray(json.loads(out.stdout)["logits"], dtype=np.float64)
        got = logits(config, tensors, data).astype(np.float64)
        diff = float(np.max(np.abs(got - want)))
        scale = float(np.max(np.abs(want)))
        print(json.dumps({"bytes": len(data), "max_abs_diff": diff, "max_abs_logit": scale}))
        worst = max(worst, diff / max(1.0, scale))
    if worst > tolerance:
        print(f"mismatch: relative logit difference {worst:.2e} over {tolerance:.0e}", file=sys.stderr)
        return 1
    print(f"logits agree with {seqless} (relative difference at most {worst:.2e})", file=sys.stderr)
    return 0


def seqless_forward(binary, model_dir, sizes, threads, runs):
    cmd = [binary, "bench", "forward", "--model", model_dir, "--bytes", ",".join(map(str, sizes)),
           "--threads", str(threads), "--runs", str(runs), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise BaselineError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def compare(args, config, tensors):
    programs = [("seqless", args.compare)] + ([("seqless-base", args.base)] if args.base else [])
    fields = ["round", "program", "bytes", "threads", "runs", "median_ms", "min_ms", "conv_ms", "tfilm_ms",
              "stats_ms", "lstm_ms", "film_ms", "lstm_roofline_ms", "onnxruntime_median_ms", "ratio_to_onnxruntime"]
    with open(args.csv, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=fields)
        out.writeheader()
        for r in range(args.rounds):
            rows = []
            for name, binary in programs:
                for rec in seqless_forward(binary, args.model_dir, args.bytes, args.threads, args.runs):
                    rows.append({"round": r, "program": name, "bytes": rec["bytes"], "threads": args.threads,
                                 "runs": args.runs, **{k: rec.get(k, "") for k in fields[5:13]}})
            onnx_ms = {}
            for n in args.bytes:
                rec = time_forward(config, tensors, n, args.threads, args.runs)
                onnx_ms[n] = rec["median_ms"]
                rows.append({"round": r, "program": "onnxruntime", "bytes": n, "threads": args.threads,
                             "runs": args.runs, "median_ms": rec["median_ms"], "min_ms": rec["min_ms"]})
            for row in rows:
                row["onnxruntime_median_ms"] = onnx_ms[row["bytes"]]
                row["ratio_to_onnxruntime"] = row["median_ms"] / onnx_ms[row["bytes"]]
                out.writerow(row)
                print(json.dumps(row), flush=True)
            f.flush()
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--bytes", default="65536", help="comma-separated input lengths to time")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per length (median reported)")
    ap.add_argument("--check", metavar="SEQLESS_BIN", help="compare logits with this seqless binary")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="--check: largest relative logit difference")
    ap.add_argument("--compare", metavar="SEQLESS_BIN", help="A/B against this seqless binary")
    ap.add_argument("--base", metavar="OLD_BIN", help="--compare: a second seqless binary, interleaved")
    ap.add_argument("--rounds", type=int, default=3, help="--compare: interleaved rounds")
    ap.add_argument("--csv", help="--compare: CSV file to write")
    args = ap.parse_args(argv)
    try:
        args.bytes = [int(b) for b in args.bytes.split(",")]
        if min(args.bytes) < 1 or args.runs < 1 or args.threads < 1 or args.rounds < 1:
            raise BaselineError("--bytes, --runs, --threads and --rounds must be at least 1")
    except ValueError:
        raise BaselineError(f"--bytes must be comma-separated integers, got {args.bytes!r}") from None
    config, tensors = load(args.model_dir)
    if args.check:
        return check(args.model_dir, config, tensors, args.check, args.tolerance)
    if args.compare:
        if not args.csv:
            raise BaselineError("--compare needs --csv")
        return compare(args, config, tensors)
    for n in args.bytes:
        print(json.dumps(time_forward(config, tensors, n, args.threads, args.runs)), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BaselineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
