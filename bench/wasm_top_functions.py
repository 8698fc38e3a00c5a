#!/usr/bin/env python3
"""Lists the largest functions of a wasm module by body size, using its name
section (the module cargo writes, before wasm-bindgen strips names):

    python3 bench/wasm_top_functions.py target/wasm32-unknown-unknown/release/sessile.wasm 30
"""
import sys


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


def main(path, top):
    b = open(path, "rb").read()
    i = 8
    imports = 0
    bodies = []
    names = {}
    while i < len(b):
        sid = b[i]
        size, i = leb(b, i + 1)
        end = i + size
        if sid == 2:  # imports: count functions
            n, j = leb(b, i)
            for _ in range(n):
                for _ in range(2):
                    ln, j = leb(b, j)
                    j += ln
                kind = b[j]
                j += 1
                if kind == 0:
                    _, j = leb(b, j)
                    imports += 1
                elif kind == 1:
                    j += 1
                    flags, j = leb(b, j)
                    _, j = leb(b, j)
                    if flags & 1:
                        _, j = leb(b, j)
                elif kind == 2:
                    flags, j = leb(b, j)
                    _, j = leb(b, j)
                    if flags & 1:
                        _, j = leb(b, j)
                elif kind == 3:
                    j += 2
        elif sid == 10:
            n, j = leb(b, i)
            for _ in range(n):
                ln, j = leb(b, j)
                bodies.append(ln)
                j += ln
        elif sid == 0:
            ln, j = leb(b, i)
            if b[j : j + ln] == b"name":
                j += ln
                while j < end:
                    sub = b[j]
                    ssz, j = leb(b, j + 1)
                    if sub == 1:
                        n, k = leb(b, j)
                        for _ in range(n):
                            idx, k = leb(b, k)
                            ln2, k = leb(b, k)
                            names[idx] = b[k : k + ln2].decode("utf-8", "replace")
                            k += ln2
                    j += ssz
        i = end
    rows = sorted(((sz, names.get(imports + k, f"func{imports + k}")) for k, sz in enumerate(bodies)), reverse=True)
    total = sum(bodies)
    print(f"{len(bodies)} functions, {total} bytes of code")
    for sz, name in rows[:top]:
        print(f"{sz:8d}  {name[:140]}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30)
