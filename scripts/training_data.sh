# Sourced by the training scripts (not run): the training data of the shipped model, from
# $shared (= ../shared/data unless SHARED_DIR says otherwise). Every speech folder but arctic,
# every noise folder; held out of training: speech/arctic and the loose noise file at the top of
# noise/ (noise_freesound_573577.wav), mixed into the held-out check, and pairs/ (the
# development check). Defines speech_folders; sets noise=(...), work_dir (a temporary folder, removed at
# exit) and heldout_noise_dir (in it, holding only the held-out noise file).
# speech_folders STAGE sets speech=(...): data stage 1 (the first 13411 steps of
# train_default.sh, and compare_designs.sh) includes precise_community, later stages leave it
# out (train_default.sh says why).
speech_folders() {
  local d list=(allison asterisk_fr asterisk_it asterisk_ru librispeech_train ljspeech vctk
                commonvoice_hsb)
  [ "$1" = 1 ] && list+=(precise_community)
  speech=()
  for d in "${list[@]}"; do speech+=("$shared/speech/$d"); done
}
noise=()
for d in blanket drunkentoast ambientengine speech_commands noisekun ibm_max_audio; do
  noise+=("$shared/noise/$d")
done
work_dir="$(mktemp -d)"
trap 'rm -rf "$work_dir"' EXIT
heldout_noise_dir="$work_dir/noise"
mkdir "$heldout_noise_dir"
ln -s "$shared/noise/noise_freesound_573577.wav" "$heldout_noise_dir/"
