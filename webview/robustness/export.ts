/** Robustness view: exports (CSV and JSON of the numbers, SVG and PNG of the charts). */
import { chartsImage, type ChartForExport } from '../shared/exportImage';
import { type ExportRun, robustnessCsv, type RobustnessExportFormat, robustnessJson } from './protocol';
import { flushRender } from './main';
import { barsBox, cssColor, curveBox, layersBox } from './skeleton';
import { post, reportOf, runs } from './state';

function exportRuns(): ExportRun[] {
  const out: ExportRun[] = [];
  for (const r of runs) {
    const rep = reportOf(r);
    if (!rep) continue;
    out.push({
      runId: r.data.runId,
      name: r.data.name,
      method: r.data.method,
      analysis: r.live ? `live ${r.live.done}/${r.live.total}` : r.data.analysis!.name,
      checkpoint: r.live ? undefined : r.data.analysis?.checkpoint,
      samplesDone: r.live?.done,
      samplesTotal: r.live?.total,
      report: rep,
    });
  }
  return out;
}

function exportBaseName(): string {
  const names = runs.map((r) => r.data.name).join('-') || 'runs';
  return `robustness-${names}`.replace(/[^\w.\- ]+/g, '_').slice(0, 100);
}

function chartsForExport(): ChartForExport[] {
  return [barsBox, curveBox, layersBox]
    .filter((b) => !b.root.hidden && b.svg.width.baseVal.value > 0)
    .map((b) => ({
      title: b.title,
      svg: b.svg,
      legend: [...b.legend.querySelectorAll('.legend-item')].map((item) => {
        const i = runs.findIndex((r) => r.data.runId === item.getAttribute('data-run'));
        return { label: item.textContent ?? '', color: cssColor(i), dash: '' };
      }),
    }));
}

export async function exportAs(format: RobustnessExportFormat): Promise<void> {
  flushRender();
  const fileName = `${exportBaseName()}.${format}`;
  if (format === 'csv') return post({ type: 'export', format, fileName, data: robustnessCsv(exportRuns()) });
  if (format === 'json') return post({ type: 'export', format, fileName, data: robustnessJson(exportRuns()) });
  post({ type: 'export', format, fileName, data: await chartsImage(chartsForExport(), format) });
}
