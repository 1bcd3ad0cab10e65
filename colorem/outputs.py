"""Where results go, checked before any work is done: the output folder made and writable, and no output that
would replace its own input. (Every file itself is written atomically: colorem.atomic.)"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from colorem.errors import OptionError


def prepare_output(output: Path, single_file: bool, option: str = "-o") -> None:
    """The output folder (made if missing), or the folder of an output file, checked writable before any
    work is done: a bad -o is one usage error, not one failure per photo after it was colorized."""
    if not single_file and output.exists() and not output.is_dir():
        raise OptionError(f"{option} {output} is a file; give a folder")
    folder = output.parent if single_file else output
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OptionError(f"cannot make the output folder {folder}: {error.strerror or error}") from None
    try:  # a real file, not os.access: root passes that test in /sys and /proc, then fails at each photo
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".colorem-probe-"):
            pass
    except OSError as error:
        raise OptionError(f"cannot write in the output folder {folder}: {error.strerror or error}") from None


def refuse_writing_over_inputs(pairs: Iterable[tuple[Path, Path]], output: Path) -> None:
    """(input, output) pairs: an output that is its own input (-o the input folder, say) is refused, since
    --overwrite would replace the original."""
    for source, target in pairs:
        if target.exists() and source.exists() and os.path.samefile(source, target):
            raise OptionError(f"-o {output} would write over the input {source} itself; choose another output")
