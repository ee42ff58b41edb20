"""Architectures of the real models the benchmarks instantiate with random weights (no hub access
needed): the keys of each model's ``config.json`` that fix its shapes and numerics."""

R1_DISTILL_QWEN_1_5B = dict(  # config.json of deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B
    vocab_size=151936,
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    max_position_embeddings=131072,
    rope_theta=10000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=False,
    bos_token_id=151646,
    eos_token_id=151643,
)
