"""Benchmark: audio-visual localization on held-out simulated rooms (the
same scoring code as `av-perception eval av-heatmap`).

Rooms of the test split (never trained on), all sound classes, 8 poses
each, in the simulator's ``sources`` view (`simulate --view sources`:
close-ups 0.3-0.8 m from the source objects, one sounding; the sounding
object covers a median 41 % of the image when in view, as in the photos of
the paper's benchmarks); scored are the images in which the sounding object
is visible (non-empty gt/source_mask). Metrics as the paper's public code computes
them: cIoU success rate (`ciou`, share of samples with cIoU >= 0.5) and
`auc`; audio->image and image->audio retrieval R@1/5/10 among 100
candidates. The shipped model, the same model trained without the extra
positives, and the centre prior, from one run, and the ceiling that the
cues sound and image share here (the class and the direction) put on
retrieval (`retrieval_ceiling`, from the scenes' ground truth); writes
bench/results/av_heatmap.json.

    .venv/bin/python bench/av_heatmap.py [--scenes 80] [--model M] [--ablation M]
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from scipy.ndimage import distance_transform_edt

from av_perception.arrays import load_array
from av_perception.avl import metrics
from av_perception.avl.dataset import AvSample, load_folder
from av_perception.avl.evaluate import print_summary, score
from av_perception.avl.heatmap import HeatmapModel
from av_perception.sim.bags import simulate

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / 'results'
MODELS = ROOT.parent / 'av_perception' / 'models'
SEED = 2023
TARGET_CIOU = 0.6
TARGET_CIOU_OVER_PRIOR = 1.5
TARGET_R1_A2I = 0.5
KEYS = ('ciou', 'auc', 'r1_a2i', 'r1_i2a')
VIEW = 'sources'


def ensure_data(out: Path, scenes: int) -> None:
    """Simulate the held-out rooms 0..scenes-1 that are not there yet
    (deterministic: the same bags as any earlier run)."""
    have = {p.parent.name for p in out.glob('test_*/metadata.yaml')}
    missing = [i for i in range(scenes) if f'test_{i:05d}' not in have]
    if missing:
        print(f'simulating {len(missing)} held-out rooms into {out} ...')
        simulate(out, len(missing), seed=SEED, split='test', ids=missing, progress=io.StringIO(),
                 view=VIEW)


def oracle_ceiling(samples: list[AvSample]) -> dict:
    """What a perfect *continuous* heatmap scores with the median threshold:
    the ground-truth mask turned into its signed distance (rising inside the
    object, falling outside). Not a method (it reads the answer): the ceiling
    of the metric on these scenes. A continuous map's median threshold keeps
    half the image, so an object smaller than a quarter of it cannot reach
    cIoU 0.5."""
    cious, frac = [], []
    for s in samples:
        if s.mask is not None and s.mask.any():
            signed = distance_transform_edt(s.mask) - distance_transform_edt(~s.mask)
            cious.append(metrics.ciou(signed, s.mask))
            frac.append(float(s.mask.mean()))
    return {'ciou': round(metrics.success_rate(cious), 4), 'auc': round(metrics.auc(cious), 4),
            'median_object_area_share': round(float(np.median(frac)), 4),
            'share_objects_ge_25pct_of_image': round(float(np.mean(np.array(frac) >= 0.25)), 4)}


def retrieval_ceiling(data: Path, samples: list[AvSample], window: int, seed: int = 0) -> dict:
    """What R@1 audio->image (``metrics.retrieval_from_similarity``, the
    benchmark's draws) a matcher scores that knows the sounding object's
    class *exactly* and its direction with a given error: the ceiling the
    two cues that sound and image share here, class and direction, put on
    retrieval. Not a method (it reads the scenes' ground truth, rebuilt
    from the benchmark's seeds): the image side is every source object
    inside the camera's field of view, with its true class, azimuth and
    distance; an audio matches an image by its nearest object of the same
    class; ties are broken at random.

    - ``direction_sigma_deg``: the true azimuth plus Gaussian error of that
      standard deviation [deg];
    - ``srp_phat``: the array's own SRP-PHAT error on each window (its
      estimate minus the true azimuth seen from the array), added to the
      true azimuth seen from the camera;
    - ``..._plus_distance_10pct``: the source's distance known as well, to
      10 % (log-normal), which no estimator here gives.

    ``samples``: every image of the bags under ``data`` (``load_folder``
    with the model's ``window``).
    """
    import math

    from av_perception.doa.classic import ClassicDoa
    from av_perception.doa.dataset import list_bags
    from av_perception.sim.bags import SceneJob
    from av_perception.sim.scene import direction_in_frame
    from av_perception.robot import load_robot

    robot = load_robot()
    cam = robot.camera
    geometry = load_array('respeaker4')
    arr = next(a for a in robot.arrays.values() if a.geometry == geometry.name)
    srp = ClassicDoa(geometry, 'srp')
    bags = list_bags(data)
    stamps: dict[int, list[int]] = {}
    for s in samples:
        stamps.setdefault(s.bag, []).append(s.stamp_ns)
    for times in stamps.values():
        times.sort()  # pose k of a room is its k-th image
    scenes = {}
    audio, images, srp_err = [], [], []
    for s in samples:
        if s.mask is None or not s.mask.any():
            continue
        if s.bag not in scenes:
            sid = int(bags[s.bag].name.split('_')[-1])
            scenes[s.bag] = SceneJob('test', sid, SEED, str(data), 8, view=VIEW).scene()
            if len(scenes[s.bag].poses) != len(stamps[s.bag]):
                raise RuntimeError(f'{bags[s.bag]} is not the benchmark\'s room {sid}')
        scene = scenes[s.bag]
        pose = scene.poses[stamps[s.bag].index(s.stamp_ns)]
        src = scene.active_sources[0]
        az, _, dist = direction_in_frame(pose, cam.xyz, src.position)
        az_arr = direction_in_frame(pose, arr.xyz, src.position)[0]
        est = srp.estimate(s.audio[:, :window], 1)
        srp_err.append(math.remainder(est[0].azimuth - az_arr, 2 * math.pi) if est else math.pi)
        audio.append((src.cls, az, dist))
        seen = [(o.cls, a, d) for o in scene.sources
                for a, _, d in [direction_in_frame(pose, cam.xyz, o.position)]
                if o.active or abs(a) <= math.radians(cam.hfov_deg / 2)]
        images.append(seen)
    n = len(audio)
    classes = sorted({c for c, _, _ in audio})
    cls = np.array([classes.index(c) for c, _, _ in audio])
    az = np.array([a for _, a, _ in audio])
    dist = np.array([d for _, _, d in audio])
    width = max(len(v) for v in images)
    v_cls = np.full((n, width), -1)
    v_az = np.zeros((n, width))
    v_dist = np.ones((n, width))
    for i, seen in enumerate(images):
        for k, (c, a, d) in enumerate(seen):
            v_cls[i, k] = classes.index(c) if c in classes else -2
            v_az[i, k], v_dist[i, k] = a, d
    rng = np.random.default_rng(seed)

    def r1(audio_az: np.ndarray, sigma_az: float, dist_sigma: float | None = None) -> float:
        d_az = np.angle(np.exp(1j * (v_az[None] - audio_az[:, None, None]))) / sigma_az
        cost = d_az ** 2
        if dist_sigma is not None:
            heard = np.log(dist) + dist_sigma * rng.standard_normal(n)
            cost = cost + ((np.log(v_dist[None]) - heard[:, None, None]) / dist_sigma) ** 2
        cost = np.where(v_cls[None] == cls[:, None, None], cost, np.inf).min(axis=2)
        sim = np.where(np.isfinite(cost), -cost, -1e12) + rng.uniform(0, 1e-9, cost.shape)
        return round(metrics.retrieval_from_similarity(sim)['r1_a2i'], 4)

    def noisy(sigma_deg: float) -> np.ndarray:
        return az + np.radians(sigma_deg) * rng.standard_normal(n)

    sigmas = (1, 2, 5, 10)
    err = np.asarray(srp_err)
    spread = np.radians(10.0)  # the matcher's tolerance for the SRP-PHAT direction
    return {
        'class_only': r1(az, 1e6),
        'direction_sigma_deg': {str(g): r1(noisy(g), np.radians(g)) for g in sigmas},
        'direction_sigma_deg_plus_distance_10pct': {str(g): r1(noisy(g), np.radians(g), 0.1)
                                                    for g in sigmas},
        'srp_phat': {'median_error_deg': round(float(np.degrees(np.median(np.abs(err)))), 2),
                     'r1_a2i': r1(az + err, spread)},
        'srp_phat_plus_distance_10pct': r1(az + err, spread, 0.1),
        'samples': n, 'objects_per_image': round(float((v_cls != -1).sum(axis=1).mean()), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--scenes', type=int, default=80)
    ap.add_argument('--data', type=Path, default=ROOT / '.cache' / f'av_heatmap_test_{VIEW}')
    ap.add_argument('--model', type=Path, default=MODELS / 'av_heatmap.onnx')
    ap.add_argument('--ablation', type=Path, default=MODELS / 'av_heatmap_single_positive.onnx')
    args = ap.parse_args()
    ensure_data(args.data, args.scenes)
    main_scores = score(args.data, model=args.model, raw_cosine=True)
    ablation = score(args.data, model=args.ablation)
    results = {'model': main_scores.summary('model'),
               'no_extra_positives': ablation.summary('model'),
               'center_prior': main_scores.summary('center_prior'),
               'model_raw_cosine': {k: v for k, v in main_scores.summary('model_raw_cosine')
                                    .items() if not k.startswith('r')}}
    # the prior ignores the audio: its retrieval is chance, k / candidates
    cand = results['model']['candidates']
    for k in (1, 5, 10):
        for d in ('a2i', 'i2a'):
            results['center_prior'][f'r{k}_{d}'] = round(k / cand, 4)
    window = HeatmapModel(args.model, load_array('respeaker4')).window
    samples = load_folder(args.data, window)  # once, for both ceilings
    results['oracle_continuous_map'] = oracle_ceiling(samples)
    results['retrieval_ceiling'] = retrieval_ceiling(args.data, samples, window)
    results['data'] = {'rooms': args.scenes, 'split': 'test', 'seed': SEED, 'view': VIEW,
                       'images': main_scores.samples,
                       'scored_images': len(main_scores.cious['model']),
                       'silent_scored_images': main_scores.silent,
                       'retrieval_candidates': cand, 'retrieval_draws': 10}
    prior = results['center_prior']['ciou']
    m = results['model']
    results['targets'] = {
        'ciou': m['ciou'], 'ciou_target': TARGET_CIOU,
        'ciou_over_center_prior': round(m['ciou'] / prior, 3) if prior else None,
        'ciou_over_center_prior_target': TARGET_CIOU_OVER_PRIOR,
        'r1_a2i': m['r1_a2i'], 'r1_a2i_target': TARGET_R1_A2I,
        'met': bool(m['ciou'] >= TARGET_CIOU and (not prior or m['ciou'] / prior >=
                                                 TARGET_CIOU_OVER_PRIOR)
                    and m['r1_a2i'] >= TARGET_R1_A2I)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'av_heatmap.json').write_text(json.dumps(results, indent=2) + '\n')
    d = results['data']
    print(f'{d["rooms"]} held-out rooms, {d["images"]} images, {d["scored_images"]} with the '
          f'sounding object in view')
    for name in ('model', 'no_extra_positives', 'center_prior', 'model_raw_cosine'):
        print_summary(name, results[name])
    for name in ('model', 'no_extra_positives'):
        r = results[name]
        print(f'{name}: ciou {r["ciou"]:.3f} = x{r["ciou"] / prior if prior else float("inf"):.2f}'
              f' of the centre prior ({prior:.3f}); auc {r["auc"]:.3f} vs '
              f'{results["center_prior"]["auc"]:.3f}')
    o = results['oracle_continuous_map']
    print(f'ceiling: a perfect continuous map (signed distance to the true object) scores ciou '
          f'{o["ciou"]} / auc {o["auc"]}: the sounding objects cover a median '
          f'{100 * o["median_object_area_share"]:.1f} % of the image, and the median threshold '
          f'keeps half of it')
    c = results['retrieval_ceiling']
    print(f'retrieval ceiling (the true class, the direction with an error): R@1 a2i '
          f'{c["class_only"]} from the class alone; '
          + ', '.join(f'{v} at {g} deg' for g, v in c['direction_sigma_deg'].items())
          + f'; {c["srp_phat"]["r1_a2i"]} with the array\'s SRP-PHAT direction (median error '
          f'{c["srp_phat"]["median_error_deg"]} deg), {c["srp_phat_plus_distance_10pct"]} '
          f'with the distance to 10 % as well')
    t = results['targets']
    print(f'targets: ciou {t["ciou"]} (>= {TARGET_CIOU}), x{t["ciou_over_center_prior"]} of the '
          f'centre prior (>= {TARGET_CIOU_OVER_PRIOR}), r1_a2i {t["r1_a2i"]} '
          f'(>= {TARGET_R1_A2I}): {"met" if t["met"] else "NOT met"}')


if __name__ == '__main__':
    main()
