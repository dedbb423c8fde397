"""The instructor's side: the live dashboard (model and feed), raised hands, broadcasts,
lesson locks, the export."""
