/**
 * What every view's host side does alike: serve the view's page (HTML shell with CSP, bundle, stylesheet, icon)
 * and answer `describe` requests (what the view has drawn; the integration tests read it).
 */
import * as vscode from 'vscode';
import { webviewHtml } from './webviewHtml';

/** Loads `dist/webview/<view>.js` with `media/<view>.css` into the panel. */
export function setViewPage(panel: vscode.WebviewPanel, extensionUri: vscode.Uri, view: string, title: string): void {
  const webview = panel.webview;
  webview.html = webviewHtml({
    cspSource: webview.cspSource,
    scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', `${view}.js`)).toString(),
    styleUri: webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', `${view}.css`)).toString(),
    title,
  });
  panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'advmoe.svg');
}

/**
 * Pending `describe` requests of one view. A request made before the view is ready is sent once it is
 * (`sendPending`); each answer resolves the request with the same id; unanswered ones time out.
 */
export class DescribeRequests<D> {
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

  /** The view became ready: ask it what was asked before. */
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

/** Saves a view's export where the user says (a save dialog opened in `folder`): base64 for PNG, text otherwise. */
export async function saveViewExport(log: vscode.LogOutputChannel, folder: vscode.Uri | undefined, format: string, fileName: string, data: string): Promise<void> {
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
