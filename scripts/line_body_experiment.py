"""An experiment, not used by the tool: line finding by a small convolutional network that marks
line bodies (the x-height band of each line), trained on pages composed from the training lines.

    python scripts/line_body_experiment.py train OUT.pt STEPS [INIT.pt LR]
    python scripts/line_body_experiment.py errors [DET.pt]     # why reference lines are missed
    python scripts/line_body_experiment.py pages DET.pt        # ocr eval --pages with this finder

Pages are composed from the ink masks of one source page's training line crops (ruled lines
removed, one scale per source page so that the typical letter is LETTER px high), stacked with
0.15-1.3 letters between bodies (crops overlap: touching ascenders and descenders), table rows of
2-4 cells for lectaurep, rule remnants, vertical strokes and specks as distractors; labels are
each line's body band over its inked columns. The network (54k parameters: two stride-2 stages,
five dilated residual convolutions, logits at half resolution) reads a page's cleaned ink mask
scaled so the line pitch is 1.65 letters; bodies are thresholded at 0.85, thin bridges opened,
words closed into lines, each band widened to its ink and grown by 0.6 of its height up and down.

Session 10 (2 CPU cores, 1,500 steps, 25 min; then 1,500 more from it with distractors): on the 89
val pages, `errors`: recall 71.4% / precision 85.0% against 73.3% / 58.0% for the shipped finder
(73.2% / 70.1% with its speck filter, commit c2f9dd4); `pages`: page CER 31.41% (copiste 24.80, hooker 27.71, lectaurep 50.31,
peraire 21.96, poilus 35.10) against 26.66% for the shipped finder. Fewer spurious lines, but
lectaurep's table cells are missed and a few junk lines (ruled-line remnants) cost many
insertions. Not shipped.

`errors` sorts the reference lines that no found line matches (box IoU >= 0.5): thin (a reference
box under half as high as the page's median one, at least 80% inside a found line: "thin-wide",
a whole line whose polygon was drawn as a thin band, which no box of the whole line can match;
"thin-short", a small insertion not found as a line of its own), merged with
others (v: vertically, h: horizontally), split over several found lines, partly covered, missed;
and the found lines that match nothing: merged, fragment (inside one reference), offset, spurious
(no reference there; on poilus pages mostly stamps and printed text that the references leave out).
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ocrcli import segment as S  # noqa: E402
from ocrcli.config import RunConfig  # noqa: E402
from ocrcli.documents import BBox, Line  # noqa: E402
from ocrcli.evaluate import box_iou  # noqa: E402
from ocrcli.pages import iter_pages  # noqa: E402
from ocrcli.preprocess import ink_mask, preprocess, text_height  # noqa: E402
from ocrcli.segment import remove_rules  # noqa: E402

LETTER = 10.0
DATA = ROOT.parent / "shared" / "data"

def groups(tsv=DATA / "train.tsv"):
    g = defaultdict(list)
    for row in tsv.read_text(encoding="utf-8").splitlines():
        p, _, s = row.split("\t")
        if s == "dhsd": continue
        stem = Path(p).stem
        key = stem.split("_eSc_line_")[0] if "_eSc_line_" in stem else re.sub(r"_r\d+l\d+$", "", stem)
        g[(s, key)].append(DATA / p)
    return [v for v in g.values() if len(v) >= 3]

_cache = {}
def raw_ink(path):
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if gray is None: return None, None
    ink = ink_mask(gray)
    th = text_height(ink, page=False)
    if th: ink = remove_rules(ink, th)
    return ink, th

def group_lines(grp):
    """Scaled (ink, body top, body bottom) of a group's crops, one scale for the group."""
    key = tuple(grp)
    if key in _cache: return _cache[key]
    raws = [raw_ink(p) for p in grp]
    ths = [t for _, t in raws if t]
    out = []
    if ths:
        s = LETTER / float(np.median(ths))
        for ink, _ in raws:
            if ink is None or not ink.any(): continue
            ink = cv2.resize(ink, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
            ink = np.where(ink > 100, 255, 0).astype(np.uint8)
            prof = np.convolve((ink > 0).sum(1).astype(float), np.ones(3) / 3, "same")
            if prof.max() <= 0 or ink.shape[1] <= 4: continue
            pk = int(np.argmax(prof)); thr = 0.35 * prof.max()
            t = pk
            while t > 0 and prof[t - 1] >= thr: t -= 1
            b = pk
            while b < len(prof) - 1 and prof[b + 1] >= thr: b += 1
            mid = (t + b) / 2; half = np.clip((b - t + 1) / 2, 0.25 * LETTER, 0.65 * LETTER)
            out.append((ink, int(mid - half), int(np.ceil(mid + half))))
    _cache[key] = out
    return out

def compose(rng, grp, size=(384, 384)):
    H, W = size
    canvas = np.zeros((H + 200, W + 200), np.uint8)  # margin so lines can start off-canvas
    label = np.zeros_like(canvas)
    lines = group_lines(grp)
    if not lines: return None
    start = rng.randrange(len(lines))
    y = rng.randrange(0, 120)
    table = "lectaurep" in str(grp[0])
    two_col = rng.random() < (0.6 if table else 0.2)
    k = start
    while y < H + 150:
        ink, bt, bb = lines[k % len(lines)]; k += 1
        if rng.random() < 0.15:  # occasional random scale jitter
            s = rng.uniform(0.8, 1.25)
            ink = cv2.resize(ink, None, fx=s, fy=s, interpolation=cv2.INTER_NEAREST); bt, bb = int(bt * s), int(bb * s)
        h, w = ink.shape
        x = rng.randrange(0, 80) if rng.random() < 0.7 else rng.randrange(0, W)
        if two_col and rng.random() < 0.5:
            x = rng.randrange(W // 2, W)
        top = y - bt
        place(canvas, label, ink, bt, bb, top, x)
        if two_col:  # more cells on the same row
            x2 = x + w
            for _ in range(rng.randint(1, 3) if table else 1):
                ink2, bt2, bb2 = lines[k % len(lines)]; k += 1
                x2 += rng.randrange(int(1 * LETTER), int(8 * LETTER))
                place(canvas, label, ink2, bt2, bb2, y - bt2 + rng.randrange(-3, 4), x2)
                x2 += ink2.shape[1]
        # next body starts a gap of 0.7..2.6 letters below this body
        y += (bb - bt) + int(rng.uniform(0.15, 1.3) * LETTER)
        if rng.random() < 0.08: y += int(rng.uniform(1, 4) * LETTER)  # paragraph gap
    # distractors: specks and short strokes
    for _ in range(rng.randrange(0, 30)):
        cx, cy = rng.randrange(canvas.shape[1]), rng.randrange(canvas.shape[0])
        cv2.circle(canvas, (cx, cy), rng.randrange(1, 3), 255, -1)
    # rule remnants (what rule removal leaves of ruled paper): broken thin horizontal strokes
    for _ in range(rng.randrange(0, 8)):
        y0 = rng.randrange(canvas.shape[0]); x = rng.randrange(0, canvas.shape[1] // 2)
        t = rng.randrange(1, 4)
        end = x + rng.randrange(50, canvas.shape[1])
        while x < end:
            seg = rng.randrange(3, 60)
            canvas[y0:y0 + t, x:min(end, x + seg)] = 255
            x += seg + rng.randrange(2, 30)
            y0 += rng.choice((0, 0, 0, 1, -1))
    for _ in range(rng.randrange(0, 3)):  # vertical strokes: margins, folds
        x0 = rng.randrange(canvas.shape[1]); y = rng.randrange(canvas.shape[0])
        canvas[y:y + rng.randrange(20, 300), x0:x0 + rng.randrange(1, 4)] = 255
    canvas, label = canvas[100:100 + H, 100:100 + W], label[100:100 + H, 100:100 + W]
    if rng.random() < 0.6:  # small rotation
        a = rng.uniform(-4, 4)
        M = cv2.getRotationMatrix2D((W / 2, H / 2), a, 1.0)
        canvas = cv2.warpAffine(canvas, M, (W, H), flags=cv2.INTER_NEAREST)
        label = cv2.warpAffine(label, M, (W, H), flags=cv2.INTER_NEAREST)
    return canvas, label

def place(canvas, label, ink, bt, bb, top, x):
    h, w = ink.shape
    H, W = canvas.shape
    top += 100; x += 100
    if top < 0 or x >= W or top + h >= H: return
    w = min(w, W - x)
    ink = ink[:, :w]
    canvas[top:top + h, x:x + w] = np.maximum(canvas[top:top + h, x:x + w], ink)
    cols = ink[max(0, bt - 2):bb + 3].any(0).astype(np.uint8)
    k = int(1.5 * LETTER)
    cols = cv2.dilate(cols[None, :], np.ones((1, k), np.uint8))[0] > 0
    # but not past the ink ends
    nz = np.nonzero(ink.any(0))[0]
    if len(nz) == 0: return
    cols[:nz[0]] = False; cols[nz[-1] + 1:] = False
    band = label[top + bt:top + bb + 1, x:x + w]
    band[:, cols] = 255


class BodyNet(nn.Module):
    def __init__(self, c=32):
        super().__init__()
        self.s1 = nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.s2 = nn.Sequential(nn.Conv2d(16, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        self.ctx = nn.ModuleList([nn.Sequential(nn.Conv2d(c, c, 3, padding=(d, 2 * d), dilation=(d, 2 * d)), nn.BatchNorm2d(c), nn.ReLU()) for d in (1, 2, 4, 8, 16)])
        self.up = nn.Conv2d(c, 16, 1)
        self.dec = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 1, 1))
    def forward(self, x):  # x: (B,1,H,W) ink 0/1, H,W multiples of 4; logits at 1/2 res
        a = self.s1(x)
        b = self.s2(a)
        for m in self.ctx: b = b + m(b)
        b = F.interpolate(self.up(b), size=a.shape[-2:], mode="bilinear", align_corners=False)
        return self.dec(a + b)

def batch(rng, gs, n, size=384):
    xs, ys = [], []
    while len(xs) < n:
        r = compose(rng, rng.choice(gs), (size, size))
        if r is None: continue
        c, l = r
        if rng.random() < 0.3: c = cv2.dilate(c, np.ones((2, 2), np.uint8))
        elif rng.random() < 0.2: c = cv2.erode(c, np.ones((2, 1), np.uint8))
        xs.append(c > 0)
        ys.append(cv2.resize(l, (size // 2, size // 2), interpolation=cv2.INTER_AREA) > 127)
    return torch.tensor(np.array(xs), dtype=torch.float32)[:, None], torch.tensor(np.array(ys), dtype=torch.float32)[:, None]

_nets = {}
def load(path):
    if path not in _nets:
        net = BodyNet(); net.load_state_dict(torch.load(path, map_location="cpu")); net.eval(); _nets[path] = net
    return _nets[path]

def body_map(clean, letter, net):
    s = LETTER / letter
    small = cv2.resize(clean, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    small = (small > 100).astype(np.float32)
    h, w = small.shape
    H, W = (h + 3) // 4 * 4, (w + 3) // 4 * 4
    x = np.zeros((H, W), np.float32); x[:h, :w] = small
    with torch.no_grad():
        p = torch.sigmoid(net(torch.from_numpy(x)[None, None]))[0, 0].numpy()
    return p, s

def find_lines_learned(page, det, thr=0.85, up=0.6, down=0.6, merge_gap=1.5, min_area=0.5, open_w=3.0, close_w=2.0, by_pitch=1.65, grow=0.6, min_ink=0.04, cfg=S.SegmentConfig()):
    ink = page.ink
    if ink is None or not ink.any(): return []
    letter = text_height(ink)
    if letter is None: return []
    text = S.text_ink(ink, letter, cfg)
    clean, rules, pitch = text.clean, text.rules, text.pitch
    p, s = body_map(clean, pitch / by_pitch if by_pitch else letter, load(det))
    mask = (p > thr).astype(np.uint8)
    if open_w:  # cut thin vertical bridges between bands
        k = max(3, int(open_w * LETTER / 2))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, k), np.uint8))
    if close_w:  # join the words of a line
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((1, max(3, int(close_w * LETTER / 2))), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    f = 2 / s  # half-res pixels -> page pixels
    boxes = []
    hh, ww = ink.shape
    barrier = cv2.dilate(rules, np.ones((1, 5), np.uint8)) if rules.any() else None
    for i in range(1, n):
        x, y, w, h, a = stats[i]
        if a * f * f < min_area * letter * letter: continue
        x0, x1 = int(x * f), int((x + w) * f)
        y0, y1 = int(y * f), int((y + h) * f)
        bh = max(y1 - y0, 1)
        x0, x1, y0, y1 = max(0, x0), min(ww, x1), max(0, y0), min(hh, y1)
        band = clean[y0:y1] > 0
        if band[:, x0:x1].mean() < min_ink: continue  # rule remnants, faint smudges
        if grow:  # reach the line's first and last strokes, which the body map may stop short of
            cols = band.any(axis=0)
            g = int(grow * pitch)
            lim0, lim1 = max(0, x0 - 3 * int(pitch)), min(ww, x1 + 3 * int(pitch))
            while True:
                nz = np.nonzero(cols[max(lim0, x0 - g):x0])[0]
                if not len(nz): break
                x0 = max(lim0, x0 - g) + int(nz[0])
                if x0 <= lim0: break
            while True:
                nz = np.nonzero(cols[x1:min(lim1, x1 + g)])[0]
                if not len(nz): break
                x1 = x1 + int(nz[-1]) + 1
                if x1 >= lim1: break
        boxes.append([x0, max(0, int(y0 - up * bh)), x1, min(hh, int(y1 + down * bh))])
    boxes = S._merge_same_line(boxes, pitch * merge_gap, barrier)
    boxes = [b for b in boxes if b[2] - b[0] >= cfg.min_width * pitch]
    return [Line(BBox(*b)) for b in S.reading_order(boxes, text, letter, cfg)]



def box(pts):
    return [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()]


def inter(a, b):
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def area(a):
    return max(0, a[2] - a[0]) * max(0, a[3] - a[1])




def errors(det: str | None) -> None:
    jsonl = DATA / "pages.jsonl"
    ref_kinds: dict = defaultdict(Counter)
    found_kinds: dict = defaultdict(Counter)
    for rec in (json.loads(raw) for raw in jsonl.read_text().splitlines() if raw.strip()):
        prep = preprocess(next(iter_pages(jsonl.parent / rec["image"])), RunConfig().preprocess)
        lines = find_lines_learned(prep, det) if det else S.find_lines(prep)
        refs = []
        for ln in rec["lines"]:
            pts = np.array(ln["polygon"], float)
            refs.append(box((np.c_[pts, np.ones(len(pts))] @ prep.transform.T)[:, :2]))
        found = [ln.bbox.to_list() for ln in lines]
        s = rec["set"]
        heights = np.median([r[3] - r[1] for r in refs]) if refs else 0
        widths = np.median([r[2] - r[0] for r in refs]) if refs else 0
        for r in refs:
            if any(box_iou(r, f) >= 0.5 for f in found):
                ref_kinds[s]["ok"] += 1
                continue
            cov = [inter(r, f) / area(r) for f in found]
            big = [f for f, c in zip(found, cov) if c > 0.5]
            if r[3] - r[1] < 0.5 * heights and max(cov, default=0) >= 0.8:
                # a reference drawn as a thin band (under half the page's median height) inside a
                # found line: a whole line annotated thin (wide), or a small insertion (short)
                ref_kinds[s]["thin-" + ("wide" if r[2] - r[0] >= 0.5 * widths else "short")] += 1
            elif big and area(big[0]) > 2 * area(r):
                f = big[0]
                tall, wide = (f[3] - f[1]) > 1.5 * (r[3] - r[1]), (f[2] - f[0]) > 1.5 * (r[2] - r[0])
                ref_kinds[s]["merged-" + ("v" if tall else "") + ("h" if wide else "")] += 1
            elif sum(c > 0.1 for c in cov) >= 2:
                ref_kinds[s]["split"] += 1
            elif max(cov, default=0) > 0.1:
                ref_kinds[s]["partial"] += 1
            else:
                ref_kinds[s]["missed"] += 1
        for f in found:
            if any(box_iou(r, f) >= 0.5 for r in refs):
                found_kinds[s]["ok"] += 1
                continue
            cov = [inter(r, f) / area(f) for r in refs]
            if sum(inter(r, f) / area(r) > 0.5 for r in refs) >= 2:
                found_kinds[s]["merged"] += 1
            elif max(cov, default=0) > 0.5:
                found_kinds[s]["fragment"] += 1
            elif max(cov, default=0) > 0.1:
                found_kinds[s]["offset"] += 1
            else:
                found_kinds[s]["spurious"] += 1
    total, total_found = Counter(), Counter()
    for s in sorted(ref_kinds):
        print(s, "references", dict(ref_kinds[s]), "| found", dict(found_kinds[s]))
        total.update(ref_kinds[s])
        total_found.update(found_kinds[s])
    print(f"recall {100 * total['ok'] / sum(total.values()):.1f}%, precision {100 * total_found['ok'] / sum(total_found.values()):.1f}%")


def pages(det: str) -> None:
    import ocrcli.pipeline as pipeline
    from ocrcli.evaluate import evaluate_pages, print_page_report

    pipeline.find_lines = lambda page: find_lines_learned(page, det)
    print_page_report(evaluate_pages(DATA / "pages.jsonl", None, "cpu"))


def train(out: Path, steps: int, init: str | None, lr: float) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rng = random.Random(steps)
    gs = groups()
    net = BodyNet()
    if init:
        net.load_state_dict(torch.load(init))
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    started, running = time.time(), 0.0
    for step in range(1, steps + 1):
        x, y = batch(rng, gs, 12, 256)
        loss = F.binary_cross_entropy_with_logits(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running = 0.95 * running + 0.05 * loss.item() if step > 1 else loss.item()
        if step % 25 == 0:
            print(f"step {step} loss {running:.4f} {time.time() - started:.0f}s", flush=True)
        if step % 200 == 0 or step == steps:
            torch.save(net.state_dict(), out)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "train":
        train(Path(args[0]), int(args[1]), args[2] if len(args) > 2 else None, float(args[3]) if len(args) > 3 else 2e-3)
    elif cmd == "errors":
        errors(args[0] if args else None)
    elif cmd == "pages":
        pages(args[0])
    else:
        sys.exit(__doc__)
