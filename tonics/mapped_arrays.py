"""The arrays of an uncompressed `.npz` file, memory-mapped instead of read.

`np.load` reads every member of an `.npz` into private memory, so eight ranks loading a 1 GB
subtree index hold eight copies. `np.savez` stores members uncompressed (ZIP_STORED), so each
member's bytes lie contiguously in the file: mapping them read-only lets every process on a machine
share one copy in the page cache, and costs nothing until a page is touched. numpy has no reader
for this (`mmap_mode` is ignored for `.npz`), hence the few lines below: the zip directory gives
each member's local header, whose length fields give where the `.npy` bytes start.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # the zip local file header, 30 bytes
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def mapped_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Every array of an uncompressed `.npz`, as read-only memory maps (small or compressed members
    and object arrays are read normally)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size < 65536:
                with archive.open(info) as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            handle.seek(info.header_offset)
            fields = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
            handle.seek(fields[-2] + fields[-1], 1)  # past the name and the extra field
            version = np.lib.format.read_magic(handle)
            read_header = _HEADER_READERS.get(version)
            if read_header is None:  # a newer .npy header: read normally
                with archive.open(info) as member:
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            shape, fortran, dtype = read_header(handle)
            if dtype.hasobject:
                raise ValueError(f"{path}: member '{name}' holds Python objects; not mappable")
            arrays[name] = np.memmap(
                path,
                dtype=dtype,
                mode="r",
                offset=handle.tell(),
                shape=shape,
                order="F" if fortran else "C",
            )
    return arrays
