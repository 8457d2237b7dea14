/** Inspector: *Export sample* (its images as PNG, upscaled, and its numbers as JSON). */
import { type Picture } from './images';
import { analysisRowIndex, detailImages, detailSource, routingRows } from './detail';
import { exportBtn } from './skeleton';
import { currentSteps, EXPORT_SIZE, post, st } from './state';

function pictureToPng(pic: Picture, scale: number): string {
  const small = document.createElement('canvas');
  small.width = pic.width;
  small.height = pic.height;
  const sctx = small.getContext('2d')!;
  const data = new ImageData(pic.width, pic.height);
  data.data.set(pic.rgba);
  sctx.putImageData(data, 0, 0);
  const big = document.createElement('canvas');
  big.width = pic.width * scale;
  big.height = pic.height * scale;
  const bctx = big.getContext('2d')!;
  bctx.imageSmoothingEnabled = false;
  bctx.drawImage(small, 0, 0, big.width, big.height);
  return big.toDataURL('image/png').replace(/^data:image\/png;base64,/, '');
}

/** The JSON of the selected sample, with the very numbers the view shows (never rounded). */
function exportJson(): Record<string, unknown> | null {
  if (!st.selected || !st.model) return null;
  const src = detailSource();
  if (src === 'none') return null;
  const imgs = detailImages();
  const w = imgs.clean?.width ?? 1;
  const scale = Math.max(1, Math.round(EXPORT_SIZE / w));
  const base: Record<string, unknown> = {
    runId: st.model.target.runId,
    runName: st.model.runName,
    analysis: st.model.analysisName,
    checkpoint: st.model.target.checkpoint ?? st.model.checkpoint ?? null,
    split: st.selected.split,
    id: st.selected.id,
    source: src,
  };
  const routing = routingRows().map((r) => ({
    layer: r.layer,
    expertsClean: r.expertsClean,
    expertsAdv: r.expertsAdv,
    changed: r.changed,
    ...(r.probsClean ? { probsClean: r.probsClean, probsAdv: r.probsAdv } : {}),
  }));
  const i = analysisRowIndex();
  const per = st.model.per;
  const row =
    per && i !== undefined
      ? {
          label: per.labels[i],
          predClean: per.predClean[i],
          confClean: per.confClean[i],
          predAdv: per.predAdv[i],
          confAdv: per.confAdv[i],
          cell: st.model.cells[i],
          attack: 'pgd',
          eps: st.model.report!.attack.eps,
          steps: st.model.report!.attack.steps,
        }
      : null;
  const out: Record<string, unknown> =
    src === 'live' && st.live
      ? {
          ...base,
          label: st.live.label,
          labelName: st.model.classNames?.[st.live.label] ?? null,
          predClean: st.live.predClean,
          confClean: st.live.confClean,
          predAdv: st.live.predAdv,
          confAdv: st.live.confAdv,
          attack: st.live.attack,
          eps: st.live.eps,
          steps: currentSteps() ?? null,
          frozenRouting: st.live.frozenRouting,
          routing,
          analysisRow: row,
        }
      : {
          ...base,
          label: row!.label,
          labelName: st.model.classNames?.[row!.label] ?? null,
          predClean: row!.predClean,
          confClean: row!.confClean,
          predAdv: row!.predAdv,
          confAdv: row!.confAdv,
          attack: 'pgd',
          eps: row!.eps,
          steps: row!.steps,
          frozenRouting: false,
          cell: row!.cell,
          routing,
        };
  out.perturbation = imgs.pert
    ? { convention: '0.5 + (adversarial - clean) * scale, pixels in [0,1]', scale: imgs.pert.scale, maxAbs: imgs.pert.maxAbs }
    : null;
  out.pngScale = scale;
  return out;
}

exportBtn.addEventListener('click', () => {
  try {
    const json = exportJson();
    if (!json || !st.selected) return;
    const imgs = detailImages();
    const scale = json.pngScale as number;
    const files: { kind: 'clean' | 'perturbation' | 'adversarial' | 'json'; data: string }[] = [];
    if (imgs.clean) files.push({ kind: 'clean', data: pictureToPng(imgs.clean, scale) });
    if (imgs.pert) files.push({ kind: 'perturbation', data: pictureToPng(imgs.pert, scale) });
    if (imgs.adv) files.push({ kind: 'adversarial', data: pictureToPng(imgs.adv, scale) });
    files.push({ kind: 'json', data: JSON.stringify(json, null, 2) + '\n' });
    post({ type: 'exportSample', id: st.selected.id, files });
  } catch (e) {
    post({ type: 'log', level: 'error', message: `export failed: ${e instanceof Error ? e.message : String(e)}` });
  }
});
