"""Video reasoning fine-tunes (VideoRFT, arXiv 2505.12434; Video-R1, arXiv 2503.21776): released-format loaders,
prompts, rewards (accuracy per problem type, format, length bonus, SigLIP semantic consistency), T-GRPO, the video
reasoning world and its study. Registered with mmsft through :mod:`tasks.video.plugin`."""
