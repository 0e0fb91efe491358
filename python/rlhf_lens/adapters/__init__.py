"""Engine bindings: rlhf_lens.adapters.trl, .verl, .openrlhf. Each imports its engine lazily."""
