"""Datasets in the bring-your-own-data format (format.py): MovieLens-100K (movielens.py),
synthetic (synthetic.py). pipeline/inputs.py picks the one a RunConfig names."""
