"""Runs PyPI's pycocotools COCOeval with default parameters on each case of CASES.json; prints JSON stats.

Usage: pycocotools_eval.py CASES.json  (CASES.json: [{"gt": path, "dt": path, "iouType": "bbox"|"segm"}])"""
import contextlib
import io
import json
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

out = []
for case in json.load(open(sys.argv[1])):
    with contextlib.redirect_stdout(io.StringIO()):  # COCO() and summarize() print progress
        gt = COCO(case["gt"])
        dt = gt.loadRes(case["dt"])
        ev = COCOeval(gt, dt, case["iouType"])
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    out.append([float(s) for s in ev.stats])
print(json.dumps(out))
