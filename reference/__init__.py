"""Cross-checks of the project's baselines against independent implementations.

SASRec, S3-Rec and HGN against RecBole 1.2.1, VBPR against Cornac, on the embedded
``synthetic`` dataset with the same split and hyper-parameters; run with ``tox -e reference``
(its own environment: RecBole needs numpy < 2 and pandas < 2.3). See results/reference/README.md.
"""
