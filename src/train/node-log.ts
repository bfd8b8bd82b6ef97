import { appendFile, readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/node-files.js';
import { LOG_COLUMNS, logRowText, lossCurveSvg, parseLogRow, type LogRow } from './run.js';

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

/**
 * The run's CSV log and its loss-curve SVG beside it (same name, .svg). New rows are appended
 * to the CSV at each flush; the SVG is redrawn from all rows.
 */
export class TrainingLog {
  private written: number;

  private constructor(
    readonly csvPath: string,
    readonly svgPath: string,
    readonly rows: LogRow[],
  ) {
    this.written = rows.length;
  }

  /**
   * Starts the log at `csvPath` afresh, or, when resuming from step `resumeStep`, keeps the
   * complete rows up to it (later ones were logged after the checkpoint and will be redone).
   */
  static async open(csvPath: string, resumeStep: number | null): Promise<TrainingLog> {
    const svgPath = `${csvPath.replace(/\.csv$/i, '')}.svg`;
    let rows: LogRow[] = [];
    if (resumeStep !== null) {
      const text = await readFile(csvPath, 'utf8').catch(() => '');
      rows = text
        .split('\n')
        .slice(1)
        // A run killed while appending may leave a partial last line.
        .filter((line) => line.split(',').length === LOG_COLUMNS.length)
        .map(parseLogRow)
        .filter((r) => r.step <= resumeStep);
    }
    await writeFileAtomic(csvPath, encode([LOG_COLUMNS.join(','), ...rows.map(logRowText)].map((line) => `${line}\n`).join('')));
    return new TrainingLog(csvPath, svgPath, rows);
  }

  add(row: LogRow): void {
    this.rows.push(row);
  }

  async flush(): Promise<void> {
    const fresh = this.rows.slice(this.written);
    if (fresh.length > 0) await appendFile(this.csvPath, fresh.map((r) => `${logRowText(r)}\n`).join(''));
    this.written = this.rows.length;
    await writeFileAtomic(this.svgPath, encode(lossCurveSvg(this.rows)));
  }
}
