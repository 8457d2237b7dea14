/**
 * Requests the suite (inside the extension host) makes to the code-server runner (which drives the browser):
 * things only the page can do or see — a screenshot, the walkthrough's checkboxes, a click inside a webview, the
 * notifications shown.
 * The suite prints `[advmoe-it] probe <id> <request JSON>`; the runner answers in `$ADVMOE_IT_PROBES/<id>.json`
 * (both run on the same machine). Imported by both sides, so it imports nothing.
 */
export type ProbeRequest =
  /** Saves a screenshot of the whole window as `<name>.png` in the runner's screenshot folder. */
  | { kind: 'screenshot'; name: string }
  /** The steps of the walkthrough page that is shown, with their checkbox state. */
  | { kind: 'walkthroughSteps' }
  /** Clicks the first visible element matching `selector` in any webview; answers its `checked` state after. */
  | { kind: 'clickInWebview'; selector: string }
  /** The texts of the notifications shown (toasts and the notification center). */
  | { kind: 'notifications' };

export interface WalkthroughStepState {
  /** The step id as the page names it (`<publisher>.<name>#<walkthrough>#<step>`). */
  id: string;
  done: boolean;
}

export type ProbeAnswer = { ok: true; value: unknown } | { ok: false; error: string };

export const PROBE_LINE = /\[advmoe-it\] probe (\S+) (\{.*\})\s*$/;
