"""Training helpers split by concern (`checkpoints`: crash-safe save / resume). The rest lives in
`mvvton.training_utils` for now."""
