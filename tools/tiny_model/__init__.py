"""How the shipped weights of `tiny` were made: its reading skills (`skills`) and a plain pretraining loop."""
