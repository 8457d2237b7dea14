/**
 * The host side every view shares: one webview panel of a kind (`PanelSlot`: show, reveal, revive after a reload
 * through its serializer) and the panel itself (`ViewPanel`: the page, typed messages validated on arrival, the
 * `ready` handshake, `log`, `export`, `describe`). A view subclasses `ViewPanel` with its in-messages, out-messages
 * and description type and implements what is its own, and is declared once with `declareView` (its kind and
 * slot); it subscribes to the job and engine events it needs in its constructor (they are disposed with the panel)
 * — nothing outside pushes into a panel.
 */
import * as vscode from 'vscode';
import type { CommonToHost, Result, ViewDescribeMessage } from '../webview/shared/messages';
import type { RunsStore } from './runsStore';
import { webviewHtml } from './webviewHtml';

/** What every panel gets from the extension. */
export interface PanelContext {
  extensionUri: vscode.Uri;
  store: RunsStore;
  log: vscode.LogOutputChannel;
}

/** What is fixed about a kind of view. */
export interface ViewKind<In extends { type: string }, D> {
  /** The webview panel type (package.json `onWebviewPanel:` and the serializer use it). */
  viewType: string;
  /** Bundle and stylesheet name: `dist/webview/<page>.js`, `media/<page>.css`. */
  page: string;
  /** Panel title before it shows anything, and the view's name in log lines. */
  title: string;
  /** Validates a message from the webview. */
  parse(raw: unknown): Result<In>;
  /** The description a `description` message carries (what `describe()` resolves with). */
  description(msg: Extract<In, { type: 'description' }>): D;
}

/**
 * Declares a view: its kind and how its one panel is made (`slot(ctx)`: the PanelSlot that views.ts owns). The
 * webview panel type is `advmoe.<page>`, as package.json's `onWebviewPanel:` activation events name it.
 * `describe()` resolves with the view's `description` message as sent unless `describedAs` maps it.
 */
export function declareView<In extends { type: string }, D, C extends PanelContext, P extends SlotPanel>(
  page: string,
  title: string,
  parse: (raw: unknown) => Result<In>,
  create: (panel: vscode.WebviewPanel, ctx: C) => P,
  describedAs: (msg: Extract<In, { type: 'description' }>) => D = (msg) => msg as unknown as D,
): ViewKind<In, D> & { slot(ctx: C): PanelSlot<P> } {
  const kind: ViewKind<In, D> = { viewType: `advmoe.${page}`, page, title, parse, description: describedAs };
  return { ...kind, slot: (ctx) => new PanelSlot(kind, ctx.extensionUri, (panel) => create(panel, ctx)) };
}

type Common = CommonToHost | { type: 'description' };
/** The messages a view handles itself (the common ones are handled here). */
export type OwnMessage<In extends { type: string }> = Exclude<In, { type: Common['type'] }>;

function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    retainContextWhenHidden: false,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

export abstract class ViewPanel<In extends { type: string }, Out extends { type: string }, D> implements vscode.Disposable {
  protected ready = false;
  private disposed = false;
  protected readonly disposables: vscode.Disposable[] = [];
  private readonly describes: DescribeRequests<D>;
  private readonly disposeEmitter = new vscode.EventEmitter<void>();
  readonly onDidDispose = this.disposeEmitter.event;

  constructor(
    readonly panel: vscode.WebviewPanel,
    protected readonly base: PanelContext,
    private readonly kind: ViewKind<In, D>,
  ) {
    panel.webview.options = webviewOptions(base.extensionUri);
    setViewPage(panel, base.extensionUri, kind.page, kind.title);
    this.describes = new DescribeRequests<D>(kind.title, (requestId) => {
      const describe: ViewDescribeMessage = { type: 'describe', requestId };
      void panel.webview.postMessage(describe);
    });
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: unknown) => void this.receive(m)),
      panel.onDidDispose(() => this.dispose()),
    );
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Posts to the webview once it is ready (before that, `onReady` sends the full state). */
  protected post(msg: Out): void {
    if (this.ready && !this.disposed) void this.panel.webview.postMessage(msg);
  }

  /** The webview (re)loaded its script: send it everything. */
  protected abstract onReady(): Promise<void>;
  /** A validated message of the view's own. */
  protected abstract onMessage(msg: OwnMessage<In>): Promise<void>;
  /** The runs the view shows (none here; views of runs say which). */
  get shownRunIds(): readonly string[] {
    return [];
  }

  /** Where the save dialog of an export opens: the runs folder of the first run shown, else the workspace folder. */
  protected exportFolder(): vscode.Uri | undefined {
    return runsFolderOf(this.base.store, this.shownRunIds) ?? vscode.workspace.workspaceFolders?.[0]?.uri;
  }

  /** Asks the webview what it has drawn (the integration tests and diagnostics read it). */
  describe(timeoutMs = 5000): Promise<D> {
    return this.describes.request(this.ready, timeoutMs);
  }

  private async receive(raw: unknown): Promise<void> {
    const parsed = this.kind.parse(raw);
    if (!parsed.ok) {
      this.base.log.warn(`${this.kind.title} view: rejected a message: ${parsed.error}`);
      return;
    }
    const msg = parsed.value as In & Common;
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        await this.onReady();
        this.describes.sendPending();
        return;
      case 'log':
        this.base.log[msg.level](`[${this.kind.page} view] ${msg.message}`);
        return;
      case 'export':
        await saveViewExport(this.base.log, this.exportFolder(), msg.format, msg.fileName, msg.data);
        return;
      case 'description': {
        const m = msg as unknown as Extract<In, { type: 'description' }> & { requestId: number };
        this.describes.answer(m.requestId, this.kind.description(m));
        return;
      }
      default:
        await this.onMessage(msg as unknown as OwnMessage<In>);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.disposables) d.dispose();
    this.disposables.length = 0;
    this.describes.clear();
    this.panel.dispose();
    this.disposeEmitter.fire();
    this.disposeEmitter.dispose();
  }
}

/**
 * The one panel of a kind. `show` creates it (beside the active editor unless told) or reveals it; VS Code's
 * serializer revives it after a reload (`serializer`), with the state the webview saved.
 */
/** What a slot needs of its panel. */
interface SlotPanel extends vscode.Disposable {
  readonly panel: vscode.WebviewPanel;
  readonly onDidDispose: vscode.Event<void>;
}

export class PanelSlot<P extends SlotPanel> implements vscode.Disposable {
  private current: P | undefined;

  constructor(
    private readonly kind: { viewType: string; title: string },
    private readonly extensionUri: vscode.Uri,
    private readonly create: (panel: vscode.WebviewPanel) => P,
  ) {}

  get instance(): P | undefined {
    return this.current;
  }

  /** The panel (created, or revealed). Whether `fresh` tells the caller to set it up from scratch. */
  show(opts: { column?: vscode.ViewColumn; preserveFocus?: boolean } = {}): { panel: P; fresh: boolean } {
    const existing = this.current;
    if (existing) {
      existing.panel.reveal(opts.column, opts.preserveFocus ?? false);
      return { panel: existing, fresh: false };
    }
    const panel = vscode.window.createWebviewPanel(
      this.kind.viewType,
      this.kind.title,
      { viewColumn: opts.column ?? vscode.ViewColumn.Beside, preserveFocus: opts.preserveFocus ?? false },
      webviewOptions(this.extensionUri),
    );
    return { panel: this.adopt(panel), fresh: true };
  }

  /** Registers the serializer that revives this kind of panel after a reload; `restore` applies the saved state. */
  serializer(restore: (p: P, state: unknown) => void): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(this.kind.viewType, {
      deserializeWebviewPanel: async (panel, state) => {
        this.current?.dispose();
        restore(this.adopt(panel), state);
      },
    });
  }

  private adopt(panel: vscode.WebviewPanel): P {
    const p = this.create(panel);
    this.current = p;
    p.onDidDispose(() => {
      if (this.current === p) this.current = undefined;
    });
    return p;
  }

  dispose(): void {
    this.current?.dispose();
  }
}

/** Loads `dist/webview/<page>.js` with the shared `media/base.css` and `media/<page>.css` into the panel. */
function setViewPage(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, page: string, title: string): void {
  const webview = panel.webview;
  const media = (name: string) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', name)).toString();
  webview.html = webviewHtml({
    cspSource: webview.cspSource,
    scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', `${page}.js`)).toString(),
    styleUris: [media('base.css'), media(`${page}.css`)],
    title,
  });
  panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'advmoe.svg');
}

/**
 * Pending `describe` requests of one view. A request made before the view is ready is sent once it is
 * (`sendPending`); each answer resolves the request with the same id; unanswered ones time out.
 */
class DescribeRequests<D> {
  private readonly waiters = new Map<number, (d: D) => void>();
  private nextId = 1;

  constructor(
    private readonly viewName: string,
    private readonly send: (requestId: number) => void,
  ) {}

  request(ready: boolean, timeoutMs: number): Promise<D> {
    const requestId = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(requestId);
        reject(new Error(`the ${this.viewName} view did not answer`));
      }, timeoutMs);
      this.waiters.set(requestId, (d) => {
        clearTimeout(timer);
        resolve(d);
      });
      if (ready) this.send(requestId);
    });
  }

  sendPending(): void {
    for (const id of this.waiters.keys()) this.send(id);
  }

  answer(requestId: number, d: D): void {
    const w = this.waiters.get(requestId);
    this.waiters.delete(requestId);
    w?.(d);
  }

  clear(): void {
    this.waiters.clear();
  }
}

/** Where a view of runs saves its exports: the runs folder of the first shown run the store knows. */
function runsFolderOf(store: RunsStore, runIds: readonly string[]): vscode.Uri | undefined {
  const first = runIds.map((id) => store.get(id)).find((e) => e !== undefined);
  return first ? vscode.Uri.file(first.runsDir) : undefined;
}

/** Saves a view's export where the user says (a save dialog opened in `folder`): base64 for PNG, text otherwise. */
async function saveViewExport(log: vscode.LogOutputChannel, folder: vscode.Uri | undefined, format: string, fileName: string, data: string): Promise<void> {
  const target = await vscode.window.showSaveDialog({
    defaultUri: folder ? vscode.Uri.joinPath(folder, fileName) : undefined,
    filters: { [format.toUpperCase()]: [format] },
    saveLabel: `Export ${format.toUpperCase()}`,
  });
  if (!target) return;
  const bytes = format === 'png' ? Buffer.from(data, 'base64') : Buffer.from(data, 'utf8');
  await vscode.workspace.fs.writeFile(target, bytes);
  log.info(`exported ${format.toUpperCase()} to ${target.fsPath}`);
  void vscode.window.showInformationMessage(`Exported ${fileName} to ${vscode.workspace.asRelativePath(target)}.`);
}
