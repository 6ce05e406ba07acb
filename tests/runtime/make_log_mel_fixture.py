#!/usr/bin/env python3
"""Writes the audio front end's fixtures into fixtures/log_mel/ (runtime_audio_test reads them):

  speech_like_16k.wav    0.6 s, 16 kHz, 16-bit PCM mono: a 100 Hz -> 7 kHz chirp, tones at
                         440 Hz and 3 kHz and seeded white noise
  speech_like_16k.npy    float32 [61, 80]: log(max(1e-10, mel power)) of that WAV's samples
                         (int16 / 32768) with n_fft 400, win 400, hop 160, 80 mels, 0..8 kHz
  speech_like_16k_n512_w320_h100_m40.npy
                         float32 [91, 40]: the same with n_fft 512, win 320, hop 100, 40 mels,
                         50..7600 Hz, center=False
  tones_22050.wav        0.4 s, 22,050 Hz, 16-bit PCM mono: 1 kHz at 0.5 plus 10 kHz at 0.25,
                         for the resampler (the 10 kHz tone lies above the 8 kHz output Nyquist)

The log-mel reference is the NumPy code below in float64 (the filter bank rounded to float32
as librosa stores it). It spells out librosa.feature.melspectrogram(sr=16000, n_fft=400,
hop_length=160, win_length=400, window="hann", center=True, pad_mode="constant", power=2.0,
n_mels=80, fmin=0, fmax=8000, htk=False, norm="slaney") and the second configuration; when librosa is installed the script
also runs librosa on the same samples and fails unless both agree within 1e-5. The fixture
itself always comes from the NumPy reference, so regenerating it needs only NumPy.

Usage: python3 make_log_mel_fixture.py [--out DIR]
"""
import argparse
import os
import struct

import numpy as np

SR = 16000
N_FFT = 400
WIN = 400
HOP = 160
N_MELS = 80
F_MIN = 0.0
F_MAX = 8000.0
FLOOR = 1e-10


def write_wav_pcm16(path, rate, samples_int16):
    data = samples_int16.astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(riff)) + riff)


def quantize(x):
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-300) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


# The default front end, and a second configuration that exercises a window shorter than the
# FFT, f_min > 0 and uncentered frames.
DEFAULT = dict(n_fft=N_FFT, win_length=WIN, hop_length=HOP, n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX, center=True)
OTHER = dict(n_fft=512, win_length=320, hop_length=100, n_mels=40, fmin=50.0, fmax=7600.0, center=False)


def mel_filters(n_fft, n_mels, fmin, fmax):
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney"), float32."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / SR)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    weights = np.zeros((n_mels, n_fft // 2 + 1))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def mel_power(y, n_fft, win_length, hop_length, n_mels, fmin, fmax, center):
    """[n_mels, frames] mel power spectrogram of float64 samples y."""
    n = np.arange(win_length)
    window = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    window[left : left + win_length] = 0.5 - 0.5 * np.cos(2 * np.pi * n / win_length)  # periodic Hann
    padded = np.pad(y, n_fft // 2, mode="constant") if center else y
    frames = 1 + (len(padded) - n_fft) // hop_length
    idx = np.arange(n_fft)[None, :] + hop_length * np.arange(frames)[:, None]
    spec = np.fft.rfft(padded[idx] * window[None, :], axis=1)
    power = spec.real**2 + spec.imag**2  # [frames, bins]
    return mel_filters(n_fft, n_mels, fmin, fmax).astype(np.float64) @ power.T


def log_mel(y, cfg):
    return np.log(np.maximum(FLOOR, mel_power(y, **cfg))).T  # [frames, n_mels]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "log_mel"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    # 16 kHz signal: a linear chirp sweeping most of the band, two steady tones, white noise so
    # every mel band carries power well above float rounding.
    t = np.arange(int(0.6 * SR)) / SR
    f0, f1, dur = 100.0, 7000.0, 0.6
    chirp = 0.3 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * dur)))
    tones = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t + 0.7)
    noise = 0.02 * np.random.default_rng(20240611).standard_normal(len(t))
    q = quantize(chirp + tones + noise)
    write_wav_pcm16(os.path.join(args.out, "speech_like_16k.wav"), SR, q)

    y = q.astype(np.float64) / 32768.0
    try:
        import librosa
    except ImportError:
        librosa = None
        print("librosa not installed: fixtures from the NumPy reference, not cross-checked")
    for name, cfg in (("speech_like_16k", DEFAULT), ("speech_like_16k_n512_w320_h100_m40", OTHER)):
        ref = log_mel(y, cfg)
        np.save(os.path.join(args.out, name + ".npy"), np.ascontiguousarray(ref, dtype=np.float32))
        print(f"{name}: {ref.shape[0]} frames x {ref.shape[1]} mels, range [{ref.min():.3f}, {ref.max():.3f}]")
        if librosa is not None:
            S = librosa.feature.melspectrogram(y=y, sr=SR, window="hann", pad_mode="constant", power=2.0, htk=False,
                                               norm="slaney", **cfg)
            lib = np.log(np.maximum(FLOOR, S)).T
            assert lib.shape == ref.shape, (lib.shape, ref.shape)
            err = float(np.abs(lib - ref).max())
            print(f"  librosa {librosa.__version__} agrees with the NumPy reference: max abs diff {err:.2e}")
            assert err < 1e-5, err

    # 22,050 Hz clip for the resampler (espeak-ng's rate).
    rate = 22050
    t = np.arange(int(0.4 * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * 1000 * t) + 0.25 * np.sin(2 * np.pi * 10000 * t)
    write_wav_pcm16(os.path.join(args.out, "tones_22050.wav"), rate, quantize(x))


if __name__ == "__main__":
    main()
