"""The training app on top of the library: the LightningModule and data module, callbacks,
settings, the LightningCLI subclass and the comparison runner.

Import layer (a module imports only layers to its left): model -> ontology -> data -> caches/eval
-> sampling/analysis -> **train** -> export -> commands -> cli.
"""
