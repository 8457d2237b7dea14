// The robustness view: being built (placeholder so that the webview bundle builds).
export {};
