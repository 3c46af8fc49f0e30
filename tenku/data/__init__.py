"""Data: clips and manifests, aspect-ratio buckets, the latent cache, video files.

    clips.py     manifests (JSONL) and the raw-clip dataset with crops and frame-rate resampling
    buckets.py   shape buckets and the resumable, rank-sharded batch sampler
    cache.py     `tenku cache`: clips -> VAE latents + text states in safetensors shards
    video_io.py  mp4/png reading and writing through PyAV
"""
