#!/usr/bin/env python3
"""The MoE layer stack moecap's GPU backend runs, written in plain PyTorch, for comparison.

Same arithmetic per layer as agent/workload (RMS norm without a learned scale, router GEMM,
softmax or sigmoid scoring, top-k or uniform override routing, grouping by expert, SwiGLU experts
with bf16 weights, weighted combine plus residual), one GPU, no communication. It prints one JSON
object per point: step time and, counted the way MoE-CAP counts (the weights of the experts a
step activates plus the router), bytes and FLOPs per second as fractions of the same probes
moecap-bench uses (device-to-device copy, bytes read + written; an 8192^3 bf16 GEMM).

Run on a GPU machine with PyTorch:
  python3 tests/gpu/torch_moe_layer.py --layers 4 --batches 1 8 32 64 --prefill-tokens 4096
Defaults are Mixtral-8x7B's shapes (d 4096, f 14336, 8 experts, top-2, softmax).
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F


def probe_copy_bandwidth(nbytes=1 << 30, iters=10):
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    return 2 * nbytes / times[len(times) // 2]  # read + written


def probe_gemm_flops(n=8192, iters=10):
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    for _ in range(3):
        a @ b
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    times.sort()
    return 2 * n ** 3 / times[len(times) // 2]


class MoeStack:
    def __init__(self, args):
        self.a = args
        d, f, e = args.hidden, args.ffn, args.experts
        g = torch.Generator(device="cuda").manual_seed(args.seed)

        def uniform(shape, fan_in):
            bound = (3.0 / fan_in) ** 0.5
            return ((torch.rand(shape, generator=g, device="cuda") * 2 - 1) * bound).to(
                torch.bfloat16)

        self.router = [uniform((e, d), d) for _ in range(args.layers)]
        self.gate_up = [uniform((e, 2 * f, d), d) for _ in range(args.layers)]
        self.down = [uniform((e, d, f), f) for _ in range(args.layers)]

    def routing(self, tokens, layer):
        """Uniform override: k distinct experts per token, fixed for the point."""
        a = self.a
        g = torch.Generator(device="cuda").manual_seed(a.seed * 1000 + layer * 7 + tokens)
        keys = torch.rand(tokens, a.experts, generator=g, device="cuda")
        return keys.topk(a.top_k, dim=1).indices

    def layer(self, x, l, forced):
        a = self.a
        k, f = a.top_k, a.ffn
        h = (x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-6)).to(torch.bfloat16)
        logits = (h @ self.router[l].t()).float()
        scores = torch.sigmoid(logits) if a.sigmoid else torch.softmax(logits, dim=1)
        chosen = forced if forced is not None else scores.topk(k, dim=1).indices
        w = scores.gather(1, chosen)
        w = w / w.sum(dim=1, keepdim=True)
        flat = chosen.flatten()
        order = torch.argsort(flat, stable=True)
        counts = torch.bincount(flat, minlength=a.experts).tolist()  # host sync, as moecap's
        token_of = order // k
        rows = h.index_select(0, token_of)
        ys = torch.empty(rows.shape[0], a.hidden, dtype=torch.bfloat16, device="cuda")
        offset = 0
        for e, n in enumerate(counts):
            if n == 0:
                continue
            seg = rows[offset:offset + n]
            gu = seg @ self.gate_up[l][e].t()
            act = F.silu(gu[:, :f]) * gu[:, f:]
            ys[offset:offset + n] = act @ self.down[l][e].t()
            offset += n
        out = x.clone()
        out.index_add_(0, token_of, ys.float() * w.flatten()[order].unsqueeze(1))
        return out, sum(1 for n in counts if n > 0)

    def step(self, x, forced):
        activated = 0
        for l in range(self.a.layers):
            x, act = self.layer(x, l, forced[l] if forced else None)
            activated += act
        return x, activated


def measure(stack, tokens, args):
    x = torch.randn(tokens, args.hidden, device="cuda")
    forced = [stack.routing(tokens, l) for l in range(args.layers)] if args.uniform else None
    _, activated = stack.step(x, forced)
    for _ in range(args.warmup):
        stack.step(x, forced)
    torch.cuda.synchronize()
    times = []
    for _ in range(args.iters):
        start = time.perf_counter()
        stack.step(x, forced)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2], activated


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--ffn", type=int, default=14336)
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--top-k", type=int, default=2)
    p.add_argument("--sigmoid", action="store_true", help="sigmoid scoring (DeepSeek-V3)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    p.add_argument("--prefill-tokens", type=int, nargs="*", default=[4096])
    p.add_argument("--gate", dest="uniform", action="store_false",
                   help="route by the gate (default: uniform override, as moecap's plans)")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("torch_moe_layer: no CUDA device", file=sys.stderr)
        return 2
    copy_bw, gemm_flops = probe_copy_bandwidth(), probe_gemm_flops()
    print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                      "copy_bytes_per_s": copy_bw, "gemm_bf16_flops": gemm_flops}), flush=True)
    stack = MoeStack(args)
    d, f, e = args.hidden, args.ffn, args.experts
    points = [("decode", b, b) for b in args.batches]
    points += [("prefill", t, t) for t in args.prefill_tokens]
    with torch.inference_mode():
        for phase, batch, tokens in points:
            seconds, activated = measure(stack, tokens, args)
            # Counted as MoE-CAP counts: activated experts' weights + the router, bf16.
            weight_bytes = 2 * (activated * 3 * d * f + args.layers * e * d)
            flops = 2 * args.layers * tokens * (args.top_k * 3 * d * f + e * d)
            print(json.dumps({
                "impl": "pytorch-eager", "phase": phase, "batch": batch, "tokens": tokens,
                "layers": args.layers, "step_ms": seconds * 1e3,
                "activated_experts": activated, "counted_weight_bytes": weight_bytes,
                "bytes_per_s": weight_bytes / seconds,
                "mbu_vs_copy": weight_bytes / seconds / copy_bw,
                "flops_per_s": flops / seconds, "mfu_vs_gemm": flops / seconds / gemm_flops,
            }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
