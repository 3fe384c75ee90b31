#!/usr/bin/env python3
"""Write src/linmem/data/elf_images.json from this machine's binaries.

Development-time only: reads the program headers (``readelf -lW``), the
DT_NEEDED/DT_SONAME entries (``readelf -dW``) and ``stat`` of a few programs
and of every library they need, so that linmem can lay out their address
spaces with no tool at run time. The ld.so figures (the size of
/etc/ld.so.cache, the anonymous mappings glibc's loader makes before and
after loading the libraries) come from ``strace`` of each program.

Usage: python3 scripts/gen_elf_images.py [program ...]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

PROGRAMS = ["/usr/bin/cat", "/usr/bin/ls", "/usr/bin/bash", "/usr/bin/sleep",
            "/usr/bin/python3.11"]
OUT = Path(__file__).resolve().parent.parent / "src" / "linmem" / "data" / "elf_images.json"
LOAD_RE = re.compile(r"^\s*(LOAD|GNU_RELRO|TLS|GNU_STACK|INTERP)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)"
                     r"\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+([RWE ]{3})"
                     r"\s+(0x[0-9a-f]+)", re.M)


def readelf(flag: str, path: str) -> str:
    return subprocess.run(["readelf", flag, path], check=True, capture_output=True,
                          text=True, env={"LC_ALL": "C"}).stdout


def image(path: str) -> dict:
    real = os.path.realpath(path)
    ph, dyn = readelf("-lW", real), readelf("-dW", real)
    st = os.stat(real)
    info = {"type": re.search(r"Elf file type is (\w+)", ph).group(1), "size": st.st_size,
            "dev": [os.major(st.st_dev), os.minor(st.st_dev)], "ino": st.st_ino,
            "segments": [], "relro": None, "tls": None, "exec_stack": False, "interp": None,
            "needed": re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", dyn)}
    soname = re.search(r"\(SONAME\)\s+Library soname: \[(.+)\]", dyn)
    info["soname"] = soname.group(1) if soname else None
    interp = re.search(r"\[Requesting program interpreter: (.+)\]", ph)
    info["interp"] = interp.group(1) if interp else None
    for m in LOAD_RE.finditer(ph):
        kind, off, vaddr, filesz, memsz, flags, align = m.groups()
        nums = [int(x, 16) for x in (off, vaddr, filesz, memsz, align)]
        if kind == "LOAD":
            info["segments"].append([nums[0], nums[1], nums[2], nums[3], flags.strip(), nums[4]])
        elif kind == "GNU_RELRO":
            info["relro"] = [nums[1], nums[3]]
        elif kind == "TLS":
            info["tls"] = [nums[3], nums[4]]
        elif kind == "GNU_STACK":
            info["exec_stack"] = "E" in flags
    return info


def ldso_anon_maps(program: str) -> list[int]:
    """Sizes of the anonymous non-fixed mmaps glibc's ld.so makes at start-up."""
    out = subprocess.run(["strace", "-e", "trace=mmap,munmap,brk", program, "--version"],
                         capture_output=True, text=True, env={}).stderr
    sizes = []
    for line in out.splitlines():
        if line.startswith("munmap"):
            break                      # ld.so unmaps ld.so.cache when it is done
        m = re.match(r"mmap\(NULL, (\d+), PROT_READ\|PROT_WRITE, "
                     r"MAP_PRIVATE\|MAP_ANONYMOUS, -1", line)
        if m:
            sizes.append(int(m.group(1)))
    return sizes


def main(programs: list[str]) -> None:
    images, sonames, todo = {}, {}, list(programs)
    libdirs = ["/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"]
    while todo:
        path = os.path.realpath(todo.pop(0))
        if path in images:
            continue
        images[path] = info = image(path)
        if info["interp"]:
            todo.append(info["interp"])
        for name in info["needed"]:
            lib = next(os.path.realpath(f"{d}/{name}") for d in libdirs
                       if os.path.exists(f"{d}/{name}"))
            sonames[name] = lib
            todo.append(lib)
    interps = {i["interp"]: os.path.realpath(i["interp"]) for i in images.values() if i["interp"]}
    ldso = {"cache_size": os.stat("/etc/ld.so.cache").st_size,
            "anon_maps": {os.path.realpath(p): ldso_anon_maps(p) for p in programs}}
    data = {"comment": "PT_LOAD segments [offset, vaddr, filesz, memsz, flags, align] of Debian 12 "
                       "x86-64 binaries, read with readelf; see scripts/gen_elf_images.py",
            "images": images, "sonames": sonames, "aliases": interps, "ld_so": ldso}
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} ({len(images)} images)")


if __name__ == "__main__":
    main(sys.argv[1:] or PROGRAMS)
