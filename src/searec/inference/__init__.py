"""A trained run in use: top-k recommendations in original ids
(:mod:`~searec.inference.recommend`), item tables of items added after training
(:mod:`~searec.inference.items`), and serving over HTTP
(:mod:`~searec.inference.serving`)."""
