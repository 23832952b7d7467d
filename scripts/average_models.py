"""Write the uniform average of the weights of several model files of one architecture.

usage: python scripts/average_models.py OUT.safetensors A.safetensors B.safetensors [...]

Meant for runs of the same lineage (one fine-tuned from the other): their weights lie in one basin,
where the average can read better than either. Batch-norm statistics are averaged like the weights.
The output keeps the last input's metadata plus the list of averaged files; measure it with
`ocr eval` (or ship it with scripts/finalize_model.py, which re-measures it).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ocrcli.recognition.weights import ModelInfo, load_model, save_model


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        raise SystemExit(__doc__)
    out, inputs = Path(argv[0]), [Path(a) for a in argv[1:]]
    loaded = [load_model(p, "cpu") for p in inputs]
    if len({(info.alphabet, repr(info.spec)) for _, info in loaded}) != 1:
        raise SystemExit("the models differ in charset or architecture: they cannot be averaged")
    states = [model.state_dict() for model, _ in loaded]
    mean = {k: (sum(s[k].double() for s in states) / len(states)).to(v.dtype) if v.is_floating_point() else states[-1][k]
            for k, v in states[0].items()}
    model, info = loaded[-1]
    model.load_state_dict(mean)
    save_model(out, model.state_dict(), ModelInfo(alphabet=info.alphabet, spec=info.spec,
                                                  info=dict(info.info, averaged_from=[p.name for p in inputs])))
    print(f"wrote {out}: the average of {len(inputs)} models")


if __name__ == "__main__":
    main(sys.argv[1:])
