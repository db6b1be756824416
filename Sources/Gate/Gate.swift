/// NFT-gated playback: Sign-In With Ethereum, on-chain ownership policies, playback tokens.
public enum Gate {}
