// Sends the form's text to /echo/ and shows the raw answer's status and body.
const form = document.getElementById("echo");
const answer = document.getElementById("answer");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = new FormData(form).get("text");
  try {
    const response = await fetch("/echo/" + encodeURIComponent(text));
    const body = await response.text();
    answer.textContent = `${response.status} ${response.statusText}\n` +
      `content-type: ${response.headers.get("content-type")}\n\n${body}`;
  } catch (error) {
    answer.textContent = `request failed: ${error}`;
  }
});
