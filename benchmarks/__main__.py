"""``python -m benchmarks``: every benchmark, printed as ratios against in-process baselines."""

from __future__ import annotations

from benchmarks import bench_bearer, bench_signin, bench_tokens


def main() -> None:
    bench_tokens.main()
    bench_bearer.main()
    bench_signin.main()


if __name__ == "__main__":
    main()
