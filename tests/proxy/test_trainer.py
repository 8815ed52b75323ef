import pytest
import torch

from bayesmix.data.ledger import Ledger
from bayesmix.errors import InputError
from bayesmix.proxy.plan import RunSpec
from bayesmix.proxy.trainer import TrainConfig, train_run

CFG = TrainConfig(batch_size=8, lr=1e-2, warmup_steps=2, n_evals=4, checkpoint_every=3, device="cpu")


def test_loss_goes_down_on_tiny_corpus(tiny_data, tiny_spec, tmp_path):
    ledger = Ledger(tmp_path / "study.sqlite")
    run = RunSpec.make({"legal": 0.5, "code": 0.25, "dialogue": 0.25}, "tiny", steps=40, seed=1)
    result = train_run(run, tiny_spec, tiny_data, CFG, ledger=ledger)
    first = sum(result.train_losses[:5]) / 5
    last = sum(result.train_losses[-5:]) / 5
    assert last < first - 1.0
    table = ledger.to_long_table()
    assert set(table.domain) == {"legal", "code", "dialogue"}
    early = table[table.step == table.step.min()].set_index("domain").loss
    late = table[table.step == 40].set_index("domain").loss
    assert (late < early).all()
    assert (table.bits_per_byte > 0).all()
    assert ledger.get_run(run.id).status == "finished"


class Interrupt(Exception):
    pass


def test_resume_after_interruption_equals_uninterrupted_run(tiny_data, tiny_spec, tmp_path):
    run = RunSpec.make({"legal": 0.7, "code": 0.3}, "tiny", steps=12, seed=5)
    whole = train_run(run, tiny_spec, tiny_data, CFG, checkpoint_path=tmp_path / "a.pt")

    ledger = Ledger(tmp_path / "study.sqlite")
    ckpt = tmp_path / "b.pt"

    def kill_at_8(step, loss):
        if step == 8:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_run(run, tiny_spec, tiny_data, CFG, ledger=ledger, checkpoint_path=ckpt, on_step=kill_at_8)
    assert ckpt.exists() and ledger.get_run(run.id).status == "failed"
    resumed = train_run(run, tiny_spec, tiny_data, CFG, ledger=ledger, checkpoint_path=ckpt)
    assert resumed.resumed_from == 6
    assert resumed.train_losses == whole.train_losses  # bitwise on CPU
    for (name, a), b in zip(
        whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert resumed.final == whole.final
    assert ledger.get_run(run.id).status == "finished"
    assert not ckpt.exists()


def test_checkpoint_of_other_settings_is_refused(tiny_data, tiny_spec, tmp_path):
    run = RunSpec.make({"legal": 1.0}, "tiny", steps=6, seed=0)
    ckpt = tmp_path / "c.pt"
    with pytest.raises(Interrupt):
        train_run(run, tiny_spec, tiny_data, CFG, checkpoint_path=ckpt, on_step=lambda s, _: _raise(s == 4))
    other = RunSpec.make({"legal": 1.0}, "tiny", steps=6, seed=1, id=run.id)
    with pytest.raises(InputError, match="other settings"):
        train_run(other, tiny_spec, tiny_data, CFG, checkpoint_path=ckpt)


def _raise(flag: bool) -> None:
    if flag:
        raise Interrupt
