#!/usr/bin/python3
"""QED and the descriptors of molecules/ against python3-rdkit (Debian's Python RDKit, the test
oracle): every molecule the C++ side printed (a sample of QM9) must agree to 1e-9 relative on QED,
logP, TPSA and MW, exactly on the ring count, and on each of QED's eight inputs.

Usage: check_qed_oracle.py <print_properties binary> [stride]
Runs with Debian's /usr/bin/python3 (the one python3-rdkit installs into)."""
import subprocess
import sys

from rdkit import Chem, RDLogger
from rdkit.Chem import QED, Crippen, Descriptors, rdMolDescriptors

RDLogger.DisableLog("rdApp.*")

def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))

def main():
    binary = sys.argv[1]
    stride = sys.argv[2] if len(sys.argv) > 2 else "50"
    out = subprocess.run([binary, stride], check=True, capture_output=True, text=True).stdout
    names = ["MW", "ALOGP", "HBA", "HBD", "PSA", "ROTB", "AROM", "ALERTS"]
    checked, bad = 0, []
    qed_values = []
    for line in out.splitlines():
        f = line.split("\t")
        smi = f[0]
        qed, logp, tpsa, mw = map(float, f[1:5])
        rings = int(f[5])
        inputs = list(map(float, f[6:14]))
        m = Chem.MolFromSmiles(smi)
        want = {
            "qed": QED.qed(m),
            "logp": Crippen.MolLogP(m),
            "tpsa": rdMolDescriptors.CalcTPSA(m),
            "mw": Descriptors.MolWt(m),
        }
        got = {"qed": qed, "logp": logp, "tpsa": tpsa, "mw": mw}
        for k in want:
            if not close(got[k], want[k]):
                bad.append(f"{smi}: {k} {got[k]!r} != {want[k]!r}")
        if rings != rdMolDescriptors.CalcNumRings(m):
            bad.append(f"{smi}: rings {rings} != {rdMolDescriptors.CalcNumRings(m)}")
        props = QED.properties(m)
        for name, g, w in zip(names, inputs, props):
            if not close(g, float(w)):
                bad.append(f"{smi}: QED input {name} {g!r} != {w!r}")
        qed_values.append(want["qed"])
        checked += 1
    if checked < 100:
        bad.append(f"only {checked} molecules were printed")
    spread = max(qed_values) - min(qed_values) if qed_values else 0
    if spread < 0.2:
        bad.append(f"the sample's QED spans only {spread:.3f}: not a test of the formula")
    if bad:
        print(f"{len(bad)} disagreement(s) with python3-rdkit over {checked} molecules:")
        print("\n".join(bad[:20]))
        return 1
    print(f"QED, logP, TPSA, MW, rings and QED's 8 inputs agree with python3-rdkit on {checked} "
          f"QM9 molecules (QED from {min(qed_values):.3f} to {max(qed_values):.3f})")
    return 0

if __name__ == "__main__":
    sys.exit(main())
