"""The pretrained family: Hugging Face encoders fine-tuned (`hf`) or frozen under a logistic
regression (`embed-lr`). Settings and specs in `settings`, resolving and loading encoders in
`encoders`, the network and the family's loader in `model`, the runs in `run` and `embed`."""
