"""Device choice: CPU by default, CUDA with bf16 autocast and torch.compile when present."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from bayesmix.errors import InputError


@dataclass(frozen=True)
class DeviceSetup:
    """Where and how a model runs.

    Parameters
    ----------
    device
        ``"cpu"`` or ``"cuda"``.
    bf16
        Use bfloat16 autocast for forward passes.
    compile
        Wrap the model with ``torch.compile``.
    """

    device: str
    bf16: bool
    compile: bool

    def autocast(self) -> AbstractContextManager | None:
        """Return the autocast context, or None for full precision."""
        import torch

        return torch.autocast(self.device, dtype=torch.bfloat16) if self.bf16 else None


def resolve(device: str = "auto", compile: str | bool = "auto") -> DeviceSetup:
    """Pick the device and precision.

    Parameters
    ----------
    device
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"`` or ``"cuda"``.
    compile
        ``"auto"`` (on CUDA only: on CPU it costs a long warm-up for ~10%), True or False.

    Returns
    -------
    DeviceSetup
        bf16 is used on CUDA, full float32 on CPU.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise InputError("device", f"is {device!r}", "use auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device", "cuda was asked for but torch sees no GPU", "use --device cpu or auto")
    on_gpu = device == "cuda"
    do_compile = on_gpu if compile == "auto" else bool(compile)
    return DeviceSetup(device=device, bf16=on_gpu, compile=do_compile)


def maybe_compile(model: Any, setup: DeviceSetup) -> Any:
    """Return ``torch.compile(model)`` when the setup asks for it, else the model."""
    if not setup.compile:
        return model
    import torch

    return torch.compile(model)
