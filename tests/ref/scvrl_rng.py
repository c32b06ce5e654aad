"""scvrl's shared counter-based random generator (the C side, scvrl.h, implements the same).

Everything here must match the C implementation bit for bit:

    M64 = 2**64 - 1
    mix(z):   splitmix64 finaliser of z + golden gamma
    rng_u64(seed, stream, i)     = mix((mix(seed ^ mix(stream)) + i) mod 2^64)
    rng_uniform(seed, stream, i) = (rng_u64(seed, stream, i) >> 40) * 2^-24   (exact in float32)
    fnv1a64(s) = FNV-1a 64-bit over the UTF-8 bytes of s

Scalar versions use Python ints; the *_np versions use numpy uint64 arrays (which wrap
mod 2^64) for large index ranges. Run this file to self-check the two against each other.
"""
import numpy as np

M64 = (1 << 64) - 1


def mix(z):
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def rng_u64(seed, stream, i):
    return mix((mix((seed & M64) ^ mix(stream & M64)) + i) & M64)


def rng_uniform(seed, stream, i):
    return (rng_u64(seed, stream, i) >> 40) * 2.0 ** -24


def fnv1a64(s):
    h = 0xcbf29ce484222325
    for b in s.encode("utf-8"):
        h = ((h ^ b) * 0x100000001b3) & M64
    return h


# ---- vectorised (numpy uint64 wraps modulo 2^64) ---------------------------------

_U = np.uint64


def mix_np(z):
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + _U(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
        return z ^ (z >> _U(31))


def rng_u64_np(seed, stream, n, start=0):
    """rng_u64(seed, stream, i) for i = start .. start+n-1, as a uint64 array."""
    base = _U(mix((seed & M64) ^ mix(stream & M64)))
    idx = np.arange(n, dtype=np.uint64) + _U(start)
    with np.errstate(over="ignore"):
        return mix_np(idx + base)


def rng_uniform_np(seed, stream, n, start=0):
    """rng_uniform for i = start .. start+n-1, as float64 (every value exact in float32)."""
    return (rng_u64_np(seed, stream, n, start) >> _U(40)).astype(np.float64) * 2.0 ** -24


def self_check(n=4096):
    import random
    r = random.Random(0)
    for seed, stream in [(0, 0), (1, 2), (1234, fnv1a64("blocks.0.attn.qkv.weight")), (M64, M64 - 5)]:
        a = rng_u64_np(seed, stream, n)
        for i in list(range(8)) + [r.randrange(n) for _ in range(64)]:
            assert int(a[i]) == rng_u64(seed, stream, i), (seed, stream, i)
        u = rng_uniform_np(seed, stream, n)
        for i in range(16):
            assert u[i] == rng_uniform(seed, stream, i)
        assert np.all(u.astype(np.float32).astype(np.float64) == u)
        assert u.min() >= 0.0 and u.max() < 1.0
    # the index addition wraps modulo 2^64 in both versions
    s = (1 << 64) - 3
    assert int(rng_u64_np(7, 9, 6, start=s - 2)[5]) == rng_u64(7, 9, (s + 3) & M64) == \
        mix((mix(7 ^ mix(9)) + s + 3) & M64)
    return True


if __name__ == "__main__":
    self_check()
    print("scvrl_rng self check ok")
    print("fnv1a64('input') = 0x%016x" % fnv1a64("input"))
    for i in range(4):
        print("rng_u64(1,2,%d) = 0x%016x  rng_uniform = %.17g" % (i, rng_u64(1, 2, i), rng_uniform(1, 2, i)))
