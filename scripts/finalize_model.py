"""Measure a trained model and write it as a shipped model with its figures in the metadata.

usage: python scripts/finalize_model.py RUN_DIR/best.safetensors models/NAME.safetensors [VAL_TSV]

Evaluates the weights (greedy decoding: the network alone) on the full validation TSV (default
../shared/data/val.tsv) and on the committed fixture lines, then writes the model file with: val CER/WER per set, fixture CER, training
sets and their licenses. Prints the markdown table for the model card.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ocrcli.evaluate import evaluate_lines  # noqa: E402
from ocrcli.recognition.weights import ModelInfo, load_model, save_model  # noqa: E402

SETS = {
    "copiste": "banq-dcn/Copiste-d-un-jour, CC BY 4.0",
    "hooker": "jschaefer738b/JosephHookerHTR, CC BY-SA 4.0 (images (c) RBG Kew, reproduced with permission)",
    "peraire": "alix-tz/peraire-ground-truth, CC BY 4.0",
    "poilus": "HTR-United/CREMMA-AN-TestamentDePoilus, CC BY 4.0",
    "lectaurep": "HTR-United/lectaurep-repertoires, CC BY 4.0",
    "dhsd": "nauman-riaz/DHSD, CC BY 4.0",
    "synthetic": "English lines rendered from 91 handwriting fonts (OFL-1.1, Apache-2.0, GPL+FE, CC BY-SA 3.0), Faker text",
}


def main() -> None:
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    val = Path(sys.argv[3]) if len(sys.argv) > 3 else ROOT.parent / "shared" / "data" / "val.tsv"
    model, info = load_model(src)
    # The network's own figures (greedy decoding); beam search depends on the language model, which
    # is tuned for a model afterwards (ocr train-lm --tune-on) and measured with ocr eval.
    report = evaluate_lines(val, src, "cpu", None, 32, decoder="greedy")
    fixture = evaluate_lines(ROOT / "tests" / "fixtures" / "val_lines" / "lines.tsv", src, "cpu", None, 32, decoder="greedy")
    all_ = report.counters["all"]
    meta = dict(info.info)
    meta.update({
        "val_cer": round(all_.cer, 4),
        "val_wer": round(all_.wer, 4),
        "val_cer_on": f"shared/data/val.tsv ({all_.lines} lines)",
        "val_cer_per_set": {k: round(v.cer, 4) for k, v in sorted(report.counters.items()) if k != "all"},
        "fixture_cer": round(fixture.counters["all"].cer, 4),
        "train_sets": list(SETS),
        "licenses": SETS,
        "parameters": sum(p.numel() for p in model.parameters()),
    })
    meta.pop("train_data", None)
    save_model(dst, model.state_dict(), ModelInfo(alphabet=info.alphabet, spec=info.spec, info=meta))
    print(f"wrote {dst}")
    print("| set | lines | CER | WER |")
    print("|---|---|---|---|")
    for k in sorted(k for k in report.counters if k != "all") + ["all"]:
        c = report.counters[k]
        print(f"| {k} | {c.lines} | {100 * c.cer:.2f}% | {100 * c.wer:.2f}% |")
    print(f"fixture ({fixture.counters['all'].lines} lines): CER {100 * fixture.counters['all'].cer:.2f}%")
    print(f"val speed: {all_.lines / report.seconds:.1f} lines/s")


if __name__ == "__main__":
    main()
