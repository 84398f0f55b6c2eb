// The embed example's script: load the model through the library, classify as the
// user types (aborting the previous request: only the latest text matters).
import { SentimentClassifier } from '../../lib/bert-sentiment.js';

const status = document.getElementById('status');
const answer = document.getElementById('answer');
const review = document.getElementById('review');

const clf = await SentimentClassifier.load('../../model/', {
  onProgress: ({ stage, loaded, total }) => {
    status.textContent = stage === 'download'
      ? `Downloading the model: ${Math.round((100 * loaded) / Math.max(total, 1))}%`
      : 'Preparing the model…';
  },
}).catch((e) => { status.textContent = `Could not load the model: ${e.message}`; throw e; });
status.textContent = `Ready (${clf.info.engine}, ${clf.info.labels.join(' / ')}).`;

let controller = null;
async function classify() {
  controller?.abort();                 // only the latest text matters
  controller = new AbortController();
  try {
    const [r] = await clf.classify([review.value], { signal: controller.signal });
    answer.textContent = `${r.label} (${(100 * r.confidence).toFixed(1)}% confidence)`;
  } catch (e) {
    if (e.name !== 'AbortError') answer.textContent = `Error: ${e.message}`;
  }
}
review.addEventListener('input', classify);
classify();
