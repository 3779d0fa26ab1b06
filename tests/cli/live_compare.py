"""Checks one `infer --live` run of tests/cli/test_live_cli.sh: its recordings and the audio it
played, against the input and the file pipeline's output. Prints one "name|ok|details" line per
check (or "name|FAIL|details").

  live_compare.py RATE INPUT RAW OUT OFFLINE PLAYED DELAY THRESHOLD MIN-REDUCTION XRUNS
  live_compare.py --self-test

INPUT: the virtual microphone's signal (WAV); RAW, OUT: infer's --record-raw and --record; OFFLINE:
the file pipeline run on RAW; PLAYED: what the virtual speaker was given (raw float32 stereo);
DELAY: the recording delay infer printed; THRESHOLD: SI-SDR (dB) OUT must reach against OFFLINE;
MIN-REDUCTION: dB of noise removed in the pauses ("-": not checked); XRUNS: the device xruns infer
counted.

On a busy machine the sound card can lose frames before infer sees them (a device xrun) and the
output can run dry (an underflow: silence, then playback resumes later) or be trimmed back to its
target latency (samples skipped). How often that happens depends on machine speed; what the
recordings and the played audio contain must not. So both are checked as runs: stretches equal,
sample for sample, to the reference at one offset each, found by `runs` below.
"""
import sys

import numpy as np
import soundfile as sf


def runs(sig, ref, lags, start=0, silence=False, budget=None, min_run=16):
    """Explains sig[start:] as consecutive runs equal to ref at a constant lag: sig[i] ==
    ref[i + lag], bit for bit, lag in [lags[0], lags[1]]; with silence, zeros form runs of their
    own. Returns (runs, unexplained, first): runs as (first sample, length, lag, or None for
    silence), unexplained the number of samples that no run of at least min_run samples explains
    (the search gives up once that exceeds budget), first the first of them (None: none)."""
    n, found, unexplained, first = len(sig), [], 0, None
    i, lag, last = start, None, 0  # last: the lag of the last run (a new one is sought near it)

    def length(i, lag):  # how far sig[i:] equals ref[i + lag:]
        m = min(n - i, len(ref) - (i + lag))
        if i + lag < 0 or m <= 0:
            return 0
        miss = sig[i: i + m] != ref[i + lag: i + lag + m]
        return int(np.argmax(miss)) if miss.any() else m

    while i < n:
        r = length(i, lag) if lag is not None else 0
        if r < min(min_run, n - i) and not (found and found[-1][2] == lag
                                             and found[-1][0] + found[-1][1] == i):
            r = 0  # resuming the last lag after a gap takes min_run samples too, as a new one does
        if r == 0 and silence and sig[i] == 0:
            nonzero = np.flatnonzero(sig[i:])
            r, lag_of_run = (int(nonzero[0]) if len(nonzero) else n - i), None
        else:
            lag_of_run = lag
        if r == 0:
            # A new lag: where in ref (within the lags allowed) the next min_run samples all fit,
            # the one whose run is longest (of the 200 nearest the last lag, should a near-silent
            # stretch fit in many places).
            lo, hi = max(0, i + lags[0]), min(len(ref), i + lags[1] + 1)
            k = min(min_run, n - i)
            fit = np.ones(max(0, hi - lo), dtype=bool)
            for t in range(k):
                window = ref[lo + t: hi + t]
                fit[: len(window)] &= window == sig[i + t]
                fit[len(window):] = False
            candidates = np.flatnonzero(fit) + lo - i
            candidates = candidates[np.argsort(np.abs(candidates - last), kind="stable")[:200]]
            best, lag = 0, None
            for c in candidates:
                length_c = length(i, int(c))
                if length_c > best:
                    best, lag = length_c, int(c)
            if best < k:
                first = i if first is None else first
                unexplained, i, lag = unexplained + 1, i + 1, None
                if budget is not None and unexplained > budget:
                    return found, unexplained + n - i, first
            continue
        if lag_of_run is not None:
            last = lag_of_run
        if found and found[-1][2] == lag_of_run and found[-1][0] + found[-1][1] == i:
            found[-1] = (found[-1][0], found[-1][1] + r, lag_of_run)
        else:
            found.append((i, r, lag_of_run))
        i += r
    return found, unexplained, first


def raw_check(raw, x, xruns):
    """The raw recording. The virtual microphone gives the input file's frames in order from the
    first, so the raw recording must be the input's first samples, bit for bit (float32 both).
    (PortAudio starts a full-duplex stream with a few callbacks of zeros flagged
    paInputUnderflow, which infer leaves out.) A device xrun loses frames before infer sees them,
    as a real microphone would (the virtual one skips a period of its file: 256 frames at 48 kHz,
    128 at 16 kHz), so: every sample equal to the input at some position, the positions only
    moving forward, and at most once per xrun. All xruns count, not only input overflows: here
    PortAudio flags them as output underflows, and restarting the full-duplex stream loses input
    too (0 input overflows in runs that lost 13 periods). Without xruns that is plain equality.
    A sample altered, inserted or repeated fails it. Returns (good, details)."""
    pieces, unexplained, bad = runs(raw, x, (0, len(x)), budget=len(raw) // 100)
    jumps = [b[2] - a[2] for a, b in zip(pieces, pieces[1:])]
    first = pieces[0][2] if pieces else None
    good = (bool(pieces) and unexplained == 0 and first == 0 and all(j > 0 for j in jumps)
            and len(jumps) <= xruns)
    return good, ("%d samples unexplained%s; %d run(s), the first at input sample %s, jumps of "
                  "%s samples" % (unexplained, "" if bad is None else " (the first at %d)" % bad,
                                  len(pieces), first, jumps))


def played_check(p, out, rate):
    """What was played (p: frames x 2 channels): the denoised output (out, clipped to +-1 as
    played), later by the playback buffering, on every channel, bit for bit. After the first
    0.5 s (start-up, jitter-buffer priming): runs of out at playback delays of 0 to 0.5 s and runs
    of silence (an underflow), the played position in out never moving back (a trim to the
    target latency moves it forward). Every non-silent sample must be explained so, and at least
    half of the samples must be non-silent. A played sample that is not the denoised output, or
    one played twice, fails it. Returns (good, details)."""
    channels_differ = np.max(np.abs(p[:, 0] - p[:, 1]))
    p = p[:, 0]
    start, reach = rate // 2, rate // 2
    sounding = np.count_nonzero(p[start:])
    pieces, unexplained, bad = runs(p, np.clip(out, -1, 1), (-reach, 0), start=start,
                                    silence=True, budget=max(1, sounding // 100))
    played = [(s, k, -lag) for s, k, lag in pieces if lag is not None]
    back = sum(b[0] - b[2] < a[0] + a[1] - a[2] for a, b in zip(played, played[1:]))
    delays = sorted(set(d for _, _, d in played))
    share = 1 - unexplained / sounding if sounding else 0.0
    good = (sounding >= 0.5 * (len(p) - start) and unexplained == 0 and back == 0
            and channels_differ == 0)
    return good, ("%.2f %% of the %d non-silent samples explained%s by %d run(s) at playback "
                  "delay(s) %s ms, %d move(s) back; channels differ by %.1e"
                  % (100 * share, sounding, "" if bad is None else " (the first not: %d)" % bad,
                     len(played), ", ".join("%.1f" % (1000.0 * d / rate) for d in delays[:8])
                     + (" ..." if len(delays) > 8 else ""), back, channels_differ))


def self_test():
    """The two checks above on made-up recordings: what an xrun or an underflow does passes,
    what a fault in the engine would do fails. Prints one "name|ok|details" line."""
    rng = np.random.default_rng(1)
    rate = 16000
    x = rng.standard_normal(3 * rate).astype(np.float32).astype(np.float64) * 0.1
    n = 2 * rate
    lost = np.concatenate([x[:5000], x[5128:n + 128]])           # one xrun: 128 frames lost
    twice = np.concatenate([x[:5000], x[5128:9000], x[9128:n + 256]])
    altered = x[:n].copy()
    altered[7000] += 1e-3
    repeated = np.concatenate([x[:5000], x[4900:n - 100]])
    raw_cases = [("input as it is", x[:n], 0, True), ("one xrun", lost, 1, True),
                 ("two jumps, one xrun", twice, 1, False), ("two jumps, two xruns", twice, 2, True),
                 ("one sample altered", altered, 5, False), ("100 samples repeated", repeated, 5, False)]
    out = x[: 2 * rate] * 0.5
    d = 800  # samples of playback delay
    def stereo(q):
        return np.repeat(q[:, None], 2, axis=1)
    clean = np.concatenate([np.zeros(d), out])[: 2 * rate]
    gap = np.concatenate([np.zeros(d), out[:12000], np.zeros(300), out[12000:]])[: 2 * rate]
    trim = np.concatenate([np.zeros(d), out[:12000], out[12500:]])[: 2 * rate]
    replay = np.concatenate([np.zeros(d), out[:12000], out[11990:]])[: 2 * rate]
    foreign = clean.copy()
    foreign[20000:20032] = x[:32]
    skewed = stereo(clean)
    skewed[15000, 1] += 1e-3
    played_cases = [("as output", stereo(clean), True), ("an underflow", stereo(gap), True),
                    ("a trim", stereo(trim), True), ("10 samples played twice", stereo(replay), False),
                    ("32 foreign samples", stereo(foreign), False), ("channels differ", skewed, False)]
    wrong = [name for name, sig, xr, want in raw_cases if raw_check(sig, x, xr)[0] != want]
    wrong += [name for name, sig, want in played_cases if played_check(sig, out, rate)[0] != want]
    report("the recording checks pass xruns and underflows and catch engine faults", not wrong,
           "wrong on: %s" % ", ".join(wrong) if wrong else
           "%d made-up cases" % (len(raw_cases) + len(played_cases)))


def best_lag(a, b, lo, hi):
    """The lag in [lo, hi] maximising sum_i a[i] b[i + lag] (so b[i + lag] ~ a[i]), by FFT."""
    size = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    c = np.fft.irfft(np.conj(np.fft.rfft(a, size)) * np.fft.rfft(b, size), size)
    lags = np.arange(lo, hi + 1)
    return int(lags[np.argmax(c[lags % size])])


def si_sdr(est, ref):
    ref = ref - ref.mean()
    est = est - est.mean()
    t = np.dot(est, ref) / np.dot(ref, ref) * ref
    return 10 * np.log10(np.dot(t, t) / max(np.dot(est - t, est - t), 1e-30))


def report(name, good, details):
    print("%s|%s|%s" % (name, "ok" if good else "FAIL", details))


def main(argv):
    rate, inp, raw_path, out_path, offline_path, played_path, delay, threshold, min_reduction, \
        xruns = argv[1:11]
    rate, delay, threshold, xruns = int(rate), int(delay), float(threshold), int(xruns)
    x, _ = sf.read(inp, dtype="float64")
    raw, raw_rate = sf.read(raw_path, dtype="float64")
    out, out_rate = sf.read(out_path, dtype="float64")
    off, _ = sf.read(offline_path, dtype="float64")

    report("recordings at the device rate", raw_rate == rate and out_rate == rate,
           "raw %d Hz, out %d Hz" % (raw_rate, out_rate))
    n = len(raw)
    report("3 s recorded", abs(n - 3 * rate) <= 1, "%d samples" % n)

    good, details = raw_check(raw, x, xruns)
    report("raw recording is the input in order, less at most what %d device xrun(s) lost" % xruns,
           good, details)

    # out.wav against the file pipeline run on raw.wav (the input the engine really had),
    # delayed by the delay infer printed: out[i + delay] = offline[i]. SI-SDR over all of it.
    m = min(len(out) - delay, len(off))
    live_part, off_part = out[delay: delay + m], off[:m]
    score = si_sdr(live_part, off_part)
    report("denoised recording matches the file pipeline (SI-SDR >= %.0f dB)" % threshold,
           score >= threshold, "%.1f dB over %.2f s, delay %d samples" % (score, m / rate, delay))
    measured = best_lag(off_part, out, 0, rate // 20)
    report("measured delay equals the reported one", measured == delay,
           "measured %d, reported %d samples" % (measured, delay))
    # Control: the undenoised input, aligned the same way, must score far below the threshold (so
    # the check above would catch an infer that recorded its input instead of denoising it).
    control = si_sdr(raw[:m], off_part)
    report("control: the undenoised input scores >= 10 dB below the threshold",
           control < threshold - 10, "%.1f dB" % control)
    # Noise removed: in the quietest 20 % of 20 ms frames of the input (noise only), the output
    # is at least min_reduction dB lower (the causal 20 ms gate removes about 24 dB of this white
    # noise; "-": not checked).
    f = rate // 50
    frames = lambda s: s[: len(s) // f * f].reshape(-1, f)  # noqa: E731
    e_in = (frames(raw[:m]) ** 2).mean(axis=1)
    e_out = (frames(live_part) ** 2).mean(axis=1)
    quiet = np.argsort(e_in)[: max(1, len(e_in) // 5)]
    reduction = 10 * np.log10(e_in[quiet].sum() / max(e_out[quiet].sum(), 1e-30))
    if min_reduction != "-":
        report("noise reduced by >= %s dB in the pauses" % min_reduction,
               reduction >= float(min_reduction), "%.1f dB" % reduction)

    name = "played audio is the denoised output, in order, on every channel"
    try:
        p = np.fromfile(played_path, dtype="<f4").astype(np.float64).reshape(-1, 2)
        good, details = played_check(p, out, rate)
    except Exception as e:  # noqa: BLE001
        good, details = False, "%s: %s" % (type(e).__name__, e)
    report(name, good, details)


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
    else:
        main(sys.argv)
