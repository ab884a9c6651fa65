"""Parameter types and the small helpers every command shares."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from monitor.config import parse_duration
from monitor.errors import InputError
from monitor.timeutil import parse_iso


class IsoTime(click.ParamType):
    name = "ISO-TIME"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_iso(str(value))
        except ValueError as err:
            self.fail(str(err), param, ctx)


ISO = IsoTime()


class DurationType(click.ParamType):
    """A positive duration: ``30m``, ``2h``, ``1d`` (see ``monitor.config.parse_duration``)."""

    name = "DURATION"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)
        if seconds <= 0:
            self.fail(
                f"expected a positive duration such as '30m' or '2h', got {value!r}", param, ctx
            )
        return seconds


def write_file(path: str, data: bytes) -> None:
    """Write a report atomically (temp file + rename) so a reader never sees half of it.

    A target that exists and is not a regular file (``/dev/null``, a FIFO, a terminal) is
    written in place: renaming over it would replace the device itself.
    """
    p = Path(path)
    try:
        if p.exists() and not p.is_file():
            with p.open("wb") as out:
                out.write(data)
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, p)
    except OSError as err:
        raise InputError(f"{path}: cannot write: {err.strerror}") from None


def write_json(json_out: str, data: bytes) -> None:
    """``data`` to stdout for ``-``, else atomically to the file."""
    if json_out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_file(json_out, data)


def err(message: str) -> None:
    click.echo(f"capi-monitor: {message}", err=True)
