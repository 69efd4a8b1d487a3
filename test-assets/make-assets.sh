#!/usr/bin/env bash
# Regenerates the test assets from nothing but Debian's ffmpeg and espeak-ng,
# so their origin is known and they carry no third-party content.
#   apt-get install -y ffmpeg espeak-ng && bash test-assets/make-assets.sh
set -euo pipefail
cd "$(dirname "$0")"
ffmpeg -v error -y -f lavfi -i testsrc2=size=256x256 -frames:v 1 test-image.png
ffmpeg -v error -y -f lavfi -i smptebars=size=128x128 -frames:v 1 -q:v 3 test-upscale.jpg
espeak-ng -s 150 -w /tmp/ai-job-tester-speech.wav \
  "Livepeer job tester. This is a short speech clip for the audio to text pipeline."
ffmpeg -v error -y -i /tmp/ai-job-tester-speech.wav -ac 1 -ar 16000 -c:a aac -b:a 48k \
  -movflags +faststart test-audio.mp4
rm -f /tmp/ai-job-tester-speech.wav
# A 2 s HTTP-push segment as the transcoding contract §5 describes it: 640x360, 30 fps,
# H.264 Main yuv420p, one 60-frame GOP starting with a keyframe, AAC stereo, MPEG-TS.
ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t 2 -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p -g 60 -keyint_min 60 -sc_threshold 0 \
  -b:v 1000k -c:a aac -b:a 64k -ac 2 -f mpegts test-segment.ts
