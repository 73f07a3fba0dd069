"""The training app on top of the library: LightningModule, callbacks, CLI glue."""
