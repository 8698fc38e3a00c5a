#!/usr/bin/env python3
"""Where the bytes of a wasm module go, by part of sessile.

    scripts/wasm-parts.py MODULE_WITH_NAMES.wasm [GZIP_BYTES] [--top N]

Reads the module's code section and its name section (wasm-opt -g keeps
it; scripts/build-wasm writes such a copy with SESSILE_WASM_NAMES=1) and
sums each function body's bytes under the part its demangled name belongs
to: the first `sessile::` path in the name decides (so serde's code and
the drop glue for a sessile type count for that type's part), else the
first crate named. The data section (strings, tables) is its own row.
With GZIP_BYTES (gzip -9 of the stripped module) each part also gets its
share of them, in proportion to its raw bytes: an estimate, since gzip
does not compress every part equally. --top N lists the N largest
functions.
"""

import re
import sys

# (prefix of a sessile path, part). The first that matches wins.
SESSILE_PARTS = [
    ("sessile::core::envelope", "codec"),
    ("sessile::core::checksum", "codec"),
    ("sessile::core::slots", "codec"),
    ("sessile::core::error_text", "errors"),
    ("sessile::core::error", "errors"),
    ("sessile::core::session::store", "store engine"),
    ("sessile::web::store", "store driver"),
    ("sessile::core::session::link", "link engine"),
    ("sessile::core::protocol", "link engine"),
    ("sessile::web::link", "link driver"),
    ("sessile::core::session", "session engine"),
    ("sessile::core::lifecycle", "session engine"),
    ("sessile::core::flow_table", "session engine"),
    ("sessile::core::merge_patch", "session engine"),
    ("sessile::web::session", "session driver"),
    ("sessile::web", "boundary"),
    ("sessile::", "sessile (other)"),
]

# (crate, part) for names with no sessile path.
CRATE_PARTS = {
    "miniz_oxide": "codec",
    "flate2": "codec",
    "serde_json": "serde_json",
    "serde_wasm_bindgen": "boundary",
    "serde": "serde",
    "serde_core": "serde",
    "zmij": "serde_json",
    "wasm_bindgen": "shims",
    "js_sys": "shims",
    "web_sys": "shims",
    "wasm_bindgen_futures": "shims",
    "gloo_timers": "shims",
    "gloo_storage": "shims",
    "gloo_utils": "shims",
    "talc": "std",
    "core::fmt": "core::fmt",
    "alloc": "std",
    "core": "std",
    "std": "std",
    "hashbrown": "std",
}


def leb(buf, pos):
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def sections(buf):
    pos = 8
    while pos < len(buf):
        sid = buf[pos]
        size, pos = leb(buf, pos + 1)
        yield sid, buf[pos:pos + size]
        pos += size


def read_module(path):
    buf = open(path, "rb").read()
    imported = 0
    bodies, names, data = [], {}, 0
    for sid, body in sections(buf):
        if sid == 2:  # imports: function imports come first in the index space
            count, p = leb(body, 0)
            for _ in range(count):
                for _ in range(2):
                    n, p = leb(body, p)
                    p += n
                kind = body[p]
                p += 1
                if kind == 0:
                    imported += 1
                    _, p = leb(body, p)
                elif kind == 1:
                    p += 1
                    flags, p = leb(body, p)
                    _, p = leb(body, p)
                    if flags & 1:
                        _, p = leb(body, p)
                elif kind == 2:
                    flags, p = leb(body, p)
                    _, p = leb(body, p)
                    if flags & 1:
                        _, p = leb(body, p)
                elif kind == 3:
                    p += 2
                else:
                    p += 2
        elif sid == 10:
            count, p = leb(body, 0)
            for _ in range(count):
                size, p = leb(body, p)
                bodies.append(size)
                p += size
        elif sid == 11:
            data += len(body)
        elif sid == 0:
            n, p = leb(body, 0)
            if body[p:p + n] != b"name":
                continue
            p += n
            while p < len(body):
                sub = body[p]
                size, p = leb(body, p + 1)
                end = p + size
                if sub == 1:
                    count, q = leb(body, p)
                    for _ in range(count):
                        index, q = leb(body, q)
                        n, q = leb(body, q)
                        names[index] = body[q:q + n].decode("utf-8", "replace")
                        q += n
                p = end
    return [(names.get(imported + i, "?"), size) for i, size in enumerate(bodies)], data, len(buf)


def part_of(name):
    name = re.sub(r"\[[0-9a-f]+\]", "", name)  # v0 mangling's crate hashes
    at = name.find("sessile::")
    if at >= 0:
        rest = name[at:]
        for prefix, part in SESSILE_PARTS:
            if rest.startswith(prefix):
                return part
    if "core::fmt" in name.split("<")[0] or name.startswith("<core::fmt") or "core::fmt::" in name[:40]:
        return "core::fmt"
    head = re.sub(r"^(?:[<&*]|mut |const |dyn )+", "", name)
    crate = head.split("::")[0]
    if crate in CRATE_PARTS:
        return CRATE_PARTS[crate]
    if " shim" in name:
        return "boundary"
    if " as zmij::" in name:
        return "serde_json"
    if name.startswith("__wbg") or name.startswith("__wbindgen") or "wasm_bindgen" in name:
        return "shims"
    return "other"


def main():
    args = sys.argv[1:]
    top = 0
    if "--top" in args:
        i = args.index("--top")
        top = int(args[i + 1])
        del args[i:i + 2]
    funcs, data, total = read_module(args[0])
    gz = int(args[1]) if len(args) > 1 else 0
    parts = {}
    for name, size in funcs:
        parts[part_of(name)] = parts.get(part_of(name), 0) + size
    parts["data (strings, tables)"] = data
    counted = sum(parts.values())
    print(f"{'part':<24} {'raw bytes':>10}" + (f" {'gzip share':>11}" if gz else ""))
    for part, size in sorted(parts.items(), key=lambda kv: -kv[1]):
        line = f"{part:<24} {size:>10,}"
        if gz:
            line += f" {round(gz * size / counted):>11,}"
        print(line)
    print(f"{'(code + data)':<24} {counted:>10,}" + (f" {gz:>11,}" if gz else ""))
    if top:
        print()
        for name, size in sorted(funcs, key=lambda f: -f[1])[:top]:
            short = re.sub(r"\[[0-9a-f]+\]", "", name)
            print(f"{size:>7,}  {part_of(name):<16} {short[:150]}")


if __name__ == "__main__":
    main()
