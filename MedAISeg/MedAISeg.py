"""MedAISeg: AI segmentation of a volume with the MedAI engine, run in a child process that Cancel can stop.

Only slicer, qt and this module's helpers (MedAISegLib, which imports slicer, qt and vtk) are imported when Slicer
loads this file. The engine (``medai``) and what it needs (torch, ...) are imported inside the functions that use
them, after the dependencies have been ensured.
"""

import logging
import os
import shutil
import sys
import tempfile
from typing import Annotated

import qt

import slicer
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import *
from slicer.util import VTKObservationMixin

from MedAISegLib.engine import EngineLogic
from MedAISegLib.gui import ParameterNodeGui, chooseModelFile, showError

#: Where the engine may run the model.
DEVICES = ("auto", "cpu", "cuda")

#: How often the widget reads the run's progress, in milliseconds.
POLL_MILLISECONDS = 200


class MedAISeg(ScriptedLoadableModule):
    """The module's description for Slicer's module list."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("MedAI Segmentation")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["MedAI contributors"]
        self.parent.helpText = _("""
Segments a volume with a deep-learning model of the MedAI catalog. The result is a segmentation node with named,
coloured and terminology-coded segments, on the input volume's grid. The model runs in a separate process:
the application stays responsive and Cancel stops the run.
""")
        self.parent.acknowledgementText = _("""
Built on the 3D Slicer scripted module template (Jean-Christophe Fillion-Robin, Kitware; Andras Lasso, PerkLab;
Steve Pieper, Isomics) and on the PyTorch extension.
""")


@parameterNodeWrapper
class MedAISegParameterNode:
    """The module's parameters, saved with the scene.

    inputVolume - the volume to segment (for a model that takes several volumes per case: its first one).
    channel2Volume, channel3Volume, channel4Volume - the case's other volumes, for models that take them.
    model - the id of the catalog model card.
    device - where the model runs: "auto" (a GPU if there is one), "cpu" or "cuda".
    outputSegmentation - the node that receives the result; a new one is created when it is not set.
    createClosedSurface - also build the 3D surfaces of the segments.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    channel2Volume: vtkMRMLScalarVolumeNode
    channel3Volume: vtkMRMLScalarVolumeNode
    channel4Volume: vtkMRMLScalarVolumeNode
    model: str = "brain-extraction"
    device: Annotated[str, Choice(DEVICES)] = "auto"
    outputSegmentation: vtkMRMLSegmentationNode
    createClosedSurface: bool = True


class MedAISegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: choose a volume and a model, Apply (Cancel while it runs), follow the progress."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.gui = None  # ParameterNodeGui
        self._run = None  # the medai.runner.SegmentationRun in progress
        self._runInputs = ()  # (input volume, model id, output segmentation) of that run
        self._timer = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedAISeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MedAISegLogic()
        self.gui = ParameterNodeGui(self.ui, "segmentation", self.updateApplyButton)

        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_MILLISECONDS)
        self._timer.connect("timeout()", self.onPoll)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.addModelButton.connect("clicked(bool)", self.onAddModel)
        self.enter()
        self.setRunning(False)

    def cleanup(self) -> None:
        self.cancelRun()
        self.gui.setNode(None)
        self.removeObservers()

    def enter(self) -> None:
        self.gui.setNode(self.logic.getParameterNode())

    def exit(self) -> None:
        self.gui.setNode(None)  # a run in progress goes on

    def onSceneStartClose(self, caller, event) -> None:
        self.cancelRun()  # its input is about to disappear
        self.gui.setNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.enter()

    # --- run --------------------------------------------------------------------------------------
    def updateApplyButton(self) -> None:
        running = self._run is not None
        node = self.gui.node
        ready = bool(node and node.inputVolume and node.model and None not in self.gui.channelVolumes())
        self.ui.applyButton.text = _("Cancel") if running else _("Apply")
        self.ui.applyButton.enabled = running or ready
        self.ui.applyButton.toolTip = (_("Stop the segmentation") if running else
                                       _("Segment the input volume") if ready else _("Select an input volume"))

    def setRunning(self, running: bool) -> None:
        for widget in (self.ui.inputSelector, self.ui.channel2Selector, self.ui.channel3Selector,
                       self.ui.channel4Selector, self.ui.modelComboBox, self.ui.addModelButton,
                       self.ui.deviceComboBox, self.ui.outputSelector):
            widget.enabled = not running
        self.ui.progressBar.visible = running
        self.ui.progressBar.value = 0
        self.updateApplyButton()

    def onApplyButton(self) -> None:
        if self._run is not None:
            self.cancelRun()
            self.ui.statusLabel.text = _("Cancelled.")
            return
        p = self.gui.node
        try:
            self.gui.ensureDependencies()
            self.ui.statusLabel.text = _("Starting...")
            with slicer.util.WaitCursor():
                self._run = self.logic.startSegmentation(p.inputVolume, p.model, p.device,
                                                         self.gui.channelVolumes())
        except Exception as error:
            showError(self.ui.statusLabel, error)
            return
        self._runInputs = (p.inputVolume, p.model, p.outputSegmentation)
        self.setRunning(True)
        self._timer.start()

    def onAddModel(self) -> None:
        """Install the model package or MONAI bundle the user picks into the catalog (engine logic), then select it."""
        path = chooseModelFile(self.parent)
        if not path:
            return
        try:
            self.gui.ensureDependencies()
            with slicer.util.WaitCursor():
                card = self.logic.install_model(path)
        except Exception as error:  # the engine's one-line message (not a bundle, already installed, ...)
            showError(self.ui.statusLabel, error)
            return
        self.gui.fillModels()
        self.gui.node.model = card.id
        self.ui.statusLabel.text = _("Added {name} ({id}).").format(name=card.name, id=card.id)

    def onPoll(self) -> None:
        run = self._run
        if run is None:
            return
        if run.poll_events():
            state = run.latest_progress
            self.ui.progressBar.value = int(round(100 * state.overall))
            self.ui.statusLabel.text = state.stage  # the case is always the one input
        if run.is_running():
            return
        self._timer.stop()
        self._run = None
        self.setRunning(False)
        try:
            with slicer.util.WaitCursor():
                node = self.logic.finishSegmentation(run, *self._runInputs, self.ui.closedSurfaceCheckBox.checked)
        except Exception as error:  # the run's one-line message, or a problem loading its result
            showError(self.ui.statusLabel, error)
            return
        self.logic.getParameterNode().outputSegmentation = node
        self.ui.statusLabel.text = _("Done: {count} segment(s).").format(
            count=node.GetSegmentation().GetNumberOfSegments())

    def cancelRun(self) -> None:
        """Stop the run in progress (if any); it leaves neither a node nor files behind."""
        if self._timer:
            self._timer.stop()
        run, self._run = self._run, None
        if run is not None:
            self.logic.cancelSegmentation(run)
            self.setRunning(False)


class MedAISegLogic(EngineLogic, ScriptedLoadableModuleLogic):
    """The module's logic: runs the engine's CLI for the widget, and is the engine's ``MedAISegLogic`` otherwise.

    Slicer imports this file at start-up, so it cannot subclass ``medai.slicer.seg_logic.MedAISegLogic``: that
    would import the engine in every Slicer session, and fail before the engine's packages are installed (they
    are installed on first use, see ``MedAISegLib.dependencies``). Instead every attribute this class does not
    define is looked up on one engine logic created on first use (:class:`MedAISegLib.engine.EngineLogic`): in
    the Python console ``slicer.modules.medaiseg.widgetRepresentation().self().logic`` offers the engine's whole
    console API (``segment(volumeNode, model=...)``, ``models()``, ...), and there is a single implementation.

    The methods defined here are the GUI's path: write the volume, run ``medai segment`` in a child process
    (non-blocking, cancellable: :class:`medai.runner.SegmentationRun`), load its result.
    """

    engineModule = "medai.slicer.seg_logic"
    engineClassName = "MedAISegLogic"

    def getParameterNode(self):
        return MedAISegParameterNode(super().getParameterNode())

    def startSegmentation(self, inputVolume, model: str, device: str = "auto", channelVolumes=()):
        """Write ``inputVolume`` (and the case's other ``channelVolumes``, for a model that takes several) to a work
        folder and start ``medai segment`` on it; returns the started run.

        The run works in its own temporary folder (``run.cwd``); :meth:`finishSegmentation` or
        :meth:`cancelSegmentation` removes it.
        """
        if inputVolume is None:
            raise ValueError(_("Select an input volume."))
        import medai.slicer
        from medai.runner import SegmentationRun

        folder = tempfile.mkdtemp(prefix="MedAISeg-", dir=slicer.app.temporaryPath)
        try:
            medai.slicer.save_volume_node(inputVolume, os.path.join(folder, "input.nrrd"))
            channels = [f"channel{n}.nrrd" for n in range(2, 2 + len(channelVolumes))]
            for node, name in zip(channelVolumes, channels):
                medai.slicer.save_volume_node(node, os.path.join(folder, name))
            python = shutil.which("PythonSlicer") or sys.executable
            run = SegmentationRun(["input.nrrd"], "result.seg.nrrd", model, device, channels=channels,
                                  python=python, env=slicer.util.startupEnvironment(), cwd=folder)
            logging.info(f"MedAISeg: running {' '.join(run.command)} in {folder}")
            return run.start()
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def finishSegmentation(self, run, inputVolume, model: str, outputSegmentation=None,
                           createClosedSurface: bool = False):
        """Wait for ``run`` and load its result on ``inputVolume``'s grid; returns the segmentation node.

        The engine builds the node (named after the input and the model, segments coded as the model card says,
        under the input's transform). It replaces the content of ``outputSegmentation`` when that is given.
        Raises ``MedAIError`` with the run's one-line message when the run failed.
        """
        from medai.errors import MedAIError

        try:
            result = run.wait()
            if not result.ok or not result.outputs:
                raise MedAIError(result.error or _("the engine reported no result"))
            node = self.engine.segmentation_from_file(os.path.join(run.cwd, result.outputs[0]), inputVolume, model,
                                                      createClosedSurface)
        finally:
            shutil.rmtree(run.cwd, ignore_errors=True)
        if outputSegmentation is not None:
            outputSegmentation.SetAndObserveTransformNodeID(node.GetTransformNodeID())
            outputSegmentation.GetSegmentation().DeepCopy(node.GetSegmentation())
            outputSegmentation.SetReferenceImageGeometryParameterFromVolumeNode(inputVolume)
            outputSegmentation.CreateDefaultDisplayNodes()
            for owned in (node.GetDisplayNode(), node):
                slicer.mrmlScene.RemoveNode(owned)
            node = outputSegmentation
        slicer.util.setSliceViewerLayers(background=inputVolume)
        return node

    def cancelSegmentation(self, run) -> None:
        """Kill ``run``'s process tree and remove its work folder; nothing is added to the scene."""
        run.cancel()
        shutil.rmtree(run.cwd, ignore_errors=True)


class MedAISegTest(ScriptedLoadableModuleTest):
    """Runs the real engine on a real MRI (Slicer's MRHead sample) the way the widget does."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_brainExtraction()
        self.setUp()
        self.test_cancelLeavesNothing()

    def test_brainExtraction(self):
        import numpy as np
        import SampleData

        self.delayDisplay("Loading MRHead")
        inputVolume = SampleData.downloadSample("MRHead")
        logic = MedAISegLogic()
        self.delayDisplay("Segmenting the brain (it takes a few seconds on a CPU)")
        run = logic.startSegmentation(inputVolume, "brain-extraction", "cpu")
        node = logic.finishSegmentation(run, inputVolume, "brain-extraction", createClosedSurface=True)

        self.assertFalse(os.path.exists(run.cwd))
        segmentId = node.GetSegmentation().GetSegmentIdBySegmentName("Brain")
        self.assertTrue(segmentId, "no Brain segment")
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(node, segmentId, inputVolume)
        self.assertEqual(mask.shape, slicer.util.arrayFromVolume(inputVolume).shape)
        volumeMl = mask.astype(bool).sum() * np.prod(inputVolume.GetSpacing()) / 1000.0
        self.assertTrue(800 < volumeMl < 2000, f"implausible brain volume: {volumeMl:.0f} ml")
        self.assertTrue(node.GetSegmentation().ContainsRepresentation("Closed surface"))
        self.delayDisplay("Test passed")

    def test_cancelLeavesNothing(self):
        import SampleData

        inputVolume = SampleData.downloadSample("MRHead")
        logic = MedAISegLogic()
        nodesBefore = slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")
        run = logic.startSegmentation(inputVolume, "brain-extraction", "cpu")
        logic.cancelSegmentation(run)
        result = run.wait()
        self.assertTrue(result.cancelled)
        self.assertFalse(run.is_running())
        self.assertFalse(os.path.exists(run.cwd))
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"), nodesBefore)
        self.delayDisplay("Test passed")
