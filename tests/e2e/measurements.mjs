// The page's measurements as a script waits for them. The timing line counts the answered
// measurements (`data-measurement`): a new one is told from the last by the count, since its
// numbers alone (even its duration) can repeat the last one's.

// How many measurements the page has answered so far (its timing line must be there).
export async function measurementCount(page) {
  return Number(await page.getAttribute('#probe-timing', 'data-measurement'));
}

// Waits until the page has answered more than `after` measurements.
export async function measurementAfter(page, after, timeout, polling = 100) {
  await page.waitForFunction((n) => Number(document.querySelector('#probe-timing')?.dataset.measurement) > n,
    after, { timeout, polling });
}
