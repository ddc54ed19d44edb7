"""SemanticIdGen: RQ-VAE codes + collision breaker -> ItemCatalog and SidReport (see core.py)."""
