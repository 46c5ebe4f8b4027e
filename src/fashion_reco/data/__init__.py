"""data layer: catalogues of product photos, customers, interactions, and where they come from (folders, CSV
manifests, S3, the shared real data sets).

Image decoding, transforms and the PyTorch dataset live in ``fashion_reco.data.images``, ``.transforms`` and
``.dataset`` (import them from there; they pull in torch). ``boto3`` is imported only when S3 is used.
"""

from __future__ import annotations

from fashion_reco.data.catalogue import IMAGE_SUFFIXES, SPLITS, Catalogue
from fashion_reco.data.customers import Customers
from fashion_reco.data.datasets import load_clothing, load_labels_csv, sample_catalogue
from fashion_reco.data.interactions import IdMapping, Interactions
from fashion_reco.data.retail import RetailCleaningReport, load_online_retail
from fashion_reco.data.s3 import FetchReport, S3Options, fetch_s3, key_to_path, parse_s3_uri

__all__ = [
    "IMAGE_SUFFIXES",
    "SPLITS",
    "Catalogue",
    "Customers",
    "FetchReport",
    "IdMapping",
    "Interactions",
    "RetailCleaningReport",
    "S3Options",
    "fetch_s3",
    "key_to_path",
    "load_clothing",
    "load_labels_csv",
    "load_online_retail",
    "parse_s3_uri",
    "sample_catalogue",
]
