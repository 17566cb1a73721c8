"""Repository tooling, not part of the installed package: test servers, a browser driver, tiny's pretraining."""
