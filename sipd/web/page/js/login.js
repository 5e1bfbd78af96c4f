// Where the page's token comes from: a one-time link from `sipctl web` (a code in the URL's
// fragment, exchanged here for the token and wiped from the address bar at once), the token
// pasted into the form, or this tab's sessionStorage (a reload keeps the login; closing the
// tab forgets it; the token itself dies with the daemon's process).

const KEY = "sipd.token";

export function storedToken() {
  return sessionStorage.getItem(KEY);
}

export function keepToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

// The code of a one-time link, taken out of the address bar (and so out of the history).
export function takeLoginCode(location, history) {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const code = fragment.get("login");
  if (code === null) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return code;
}

export async function exchangeCode(code) {
  const response = await fetch("/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code }),
    credentials: "omit",
    cache: "no-store",
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || typeof answer.token !== "string") {
    throw new Error(answer.error || `the login link was refused (${response.status})`);
  }
  return answer.token;
}
